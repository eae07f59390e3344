//! Where uploaded files live: `<root>/documents/<shard>/<document id>`, written first
//! under `<root>/tmp` and moved into place only once the whole request succeeded.

pub mod filename;
pub mod sniff;

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    pub fn open(root: &Path) -> io::Result<Storage> {
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(root.join("documents"))?;
        Ok(Storage { root: root.to_path_buf() })
    }

    /// A fresh path for a file being received.
    pub fn staging_path(&self) -> PathBuf {
        self.root.join("tmp").join(format!("{}.part", ulid::Ulid::generate()))
    }

    /// The stored file's path relative to the root. Files are named by id, never by the
    /// client's filename; the first 6 characters of a ULID change every few minutes,
    /// which keeps directories small.
    pub fn relative_path_for(document_id: &str) -> String {
        let shard = document_id.get(..6).unwrap_or("misc");
        format!("documents/{shard}/{document_id}")
    }

    pub fn absolute(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Moves a fully received file into place.
    pub async fn commit(&self, staged: &Path, relative: &str) -> io::Result<()> {
        let target = self.absolute(relative);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(staged, target).await
    }

    pub async fn remove(&self, relative: &str) -> io::Result<()> {
        match tokio::fs::remove_file(self.absolute(relative)).await {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}
