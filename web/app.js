"use strict";
// tern's web page: the captured mail, live (server-sent events).
async function load() {
  const r = await fetch("/api/v1/messages");
  const j = await r.json();
  const ul = document.getElementById("messages");
  ul.textContent = "";
  for (const m of j.messages) {
    const li = document.createElement("li");
    li.textContent = m.Subject + " — " + (m.From ? m.From.Address : "");
    ul.appendChild(li);
  }
  document.getElementById("status").textContent = j.total + " messages";
}
load();
new EventSource("/api/v1/events").addEventListener("message", load);
