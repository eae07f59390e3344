import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "../../src/styles.css";
import "./app.css";
import { App } from "./App.js";

createRoot(document.getElementById("root") as HTMLElement).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
