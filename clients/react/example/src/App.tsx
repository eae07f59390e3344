import { DocqueueClient, type ConnectionState } from "@docqueue/client";
import { useMemo, useState, type FormEvent } from "react";
import { ChatInput, DocumentChip, DocumentProcessingStatus, useDocumentProcessing } from "../../src/index.js";

/** Where the API is: `?api=https://docs.example.com`, or this page's own origin. */
const apiBase = new URLSearchParams(location.search).get("api") ?? "";
const TOKEN_KEY = "docqueue.token";

export function App() {
  const [token, setToken] = useState(() => localStorage.getItem(TOKEN_KEY) ?? "");
  const signIn = (value: string) => {
    localStorage.setItem(TOKEN_KEY, value);
    setToken(value);
  };
  const signOut = () => {
    localStorage.removeItem(TOKEN_KEY);
    setToken("");
  };
  return token ? <Chat key={token} token={token} onSignOut={signOut} /> : <SignIn onToken={signIn} />;
}

function SignIn({ onToken }: { onToken: (token: string) => void }) {
  const [value, setValue] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (value.trim()) onToken(value.trim());
  };
  return (
    <form className="signin" onSubmit={submit} aria-label="Sign in">
      <h1>docqueue chat</h1>
      <p>
        Paste a bearer token. <code>scripts/dev.sh</code> logs one for a demo user; with a secret set,{" "}
        <code>cargo run -- token --user you</code> prints one.
      </p>
      <label>
        Token
        <textarea value={value} onChange={(event) => setValue(event.target.value)} rows={3} />
      </label>
      <button type="submit" className="dq-button dq-button--primary">
        Sign in
      </button>
    </form>
  );
}

const connectionLabels: Record<ConnectionState, string> = {
  connecting: "Connecting…",
  open: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

interface Message {
  id: number;
  text: string;
  documentKeys: string[];
}

function Chat({ token, onSignOut }: { token: string; onSignOut: () => void }) {
  const client = useMemo(() => new DocqueueClient({ baseUrl: apiBase, token }), [token]);
  const processing = useDocumentProcessing({ client });
  const [messages, setMessages] = useState<Message[]>([]);

  return (
    <div className="chat">
      <header className="chat__header">
        <h1>docqueue chat</h1>
        <span className="chat__connection" role="status" data-connection={processing.connection}>
          {connectionLabels[processing.connection]}
        </span>
        <button type="button" className="dq-button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      {processing.authError && (
        <div className="chat__signin-needed" role="alert">
          Please sign in again: the server refused your sign-in ({processing.authError}).{" "}
          <button type="button" className="dq-button" onClick={onSignOut}>
            Sign in
          </button>
        </div>
      )}
      <main className="chat__main">
        <ol className="chat__messages" aria-label="Messages">
          {messages.map((message) => (
            <li key={message.id} className="chat__message">
              {message.text && <p>{message.text}</p>}
              {message.documentKeys.map((key) => {
                const doc = processing.documents.find((d) => d.key === key);
                return doc ? <DocumentChip key={key} doc={doc} /> : null;
              })}
            </li>
          ))}
        </ol>
        <ChatInput
          processing={processing}
          onSend={({ text, documentKeys }) => setMessages((all) => [...all, { id: all.length + 1, text, documentKeys }])}
        />
      </main>
      <aside className="chat__documents">
        <h2>Documents</h2>
        <DocumentProcessingStatus
          documents={processing.documents}
          onCancel={(key) => void processing.cancel(key)}
          onRetry={processing.retry}
        />
      </aside>
    </div>
  );
}
