//! Diesel's view of the tables (see `migrations/`).

diesel::table! {
    documents (id) {
        id -> Text,
        user_id -> Text,
        filename -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        storage_path -> Text,
        chunk_count -> Integer,
        created_at -> Timestamp,
        queue_status -> Text,
        job_id -> Text,
        queue_priority -> Integer,
        worker_id -> Nullable<Text>,
        progress -> Integer,
        stage -> Nullable<Text>,
        attempts -> Integer,
        error -> Nullable<Text>,
        queued_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        settings_fingerprint -> Nullable<Text>,
        reused_from -> Nullable<Text>,
        warning -> Nullable<Text>,
    }
}

diesel::table! {
    document_chunks (document_id, ordinal) {
        document_id -> Text,
        ordinal -> Integer,
        text -> Text,
        page_start -> Nullable<Integer>,
        page_end -> Nullable<Integer>,
        char_count -> Integer,
        embedding -> Binary,
    }
}

diesel::table! {
    job_attempts (id) {
        id -> Text,
        document_id -> Text,
        job_id -> Text,
        attempt -> Integer,
        worker_id -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        outcome -> Nullable<Text>,
        error -> Nullable<Text>,
        extractor_outcome -> Nullable<Text>,
        extractor_exit -> Nullable<Text>,
        extractor_peak_memory_kb -> Nullable<BigInt>,
        extractor_cpu_ms -> Nullable<BigInt>,
        extractor_pid -> Nullable<BigInt>,
    }
}

diesel::joinable!(document_chunks -> documents (document_id));
diesel::joinable!(job_attempts -> documents (document_id));
diesel::allow_tables_to_appear_in_same_query!(documents, document_chunks, job_attempts);
