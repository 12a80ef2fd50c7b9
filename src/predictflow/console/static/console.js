// predictflow console: a little plain JavaScript, no library, nothing from a CDN.
"use strict";

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

// The executions list: re-read the rows every few seconds, without a reload.
function autoRefresh() {
  const box = document.getElementById("execution-rows");
  if (!box) return;
  const every = Number(box.dataset.every || 3000);
  const tick = async () => {
    try {
      const response = await fetch(box.dataset.refresh, { credentials: "same-origin" });
      if (response.ok) box.innerHTML = await response.text();
    } catch (error) { /* the next tick tries again */ }
    setTimeout(tick, every);
  };
  setTimeout(tick, every);
}

// The execution page: click a state, read its detail.
function graphClicks() {
  const graph = document.getElementById("graph");
  if (!graph) return;
  const detail = document.getElementById("state-detail");
  const show = async (group) => {
    graph.querySelectorAll("g.state.selected").forEach((g) => g.classList.remove("selected"));
    group.classList.add("selected");
    const url = new URL(graph.dataset.detail, window.location.href);
    url.searchParams.set("state", group.dataset.state);
    if (graph.dataset.iteration) url.searchParams.set("iteration", graph.dataset.iteration);
    const response = await fetch(url, { credentials: "same-origin" });
    detail.innerHTML = await response.text();
  };
  graph.querySelectorAll("g.state").forEach((group) => {
    group.addEventListener("click", () => show(group));
    group.addEventListener("keydown", (event) => { if (event.key === "Enter") show(group); });
  });
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
}

// The event history: filter rows as one types.
function eventFilter() {
  const input = document.getElementById("event-filter");
  const type = document.getElementById("event-type");
  const table = document.getElementById("events");
  if (!input || !table) return;
  const apply = () => {
    const text = input.value.toLowerCase();
    table.querySelectorAll("tbody tr").forEach((row) => {
      const match = (!text || row.textContent.toLowerCase().includes(text)) && (!type.value || row.dataset.type === type.value);
      row.hidden = !match;
    });
  };
  input.addEventListener("input", apply);
  type.addEventListener("change", apply);
}

// Dead letters: open the editor of one line.
function deadLetterEditors() {
  document.querySelectorAll("button[data-edit]").forEach((button) => {
    button.addEventListener("click", () => {
      const form = document.querySelector(`form[data-fix="${CSS.escape(button.dataset.edit)}"]`);
      const row = button.closest("tr");
      row.after(Object.assign(document.createElement("tr"), { className: "fix-row" }));
      const cell = document.createElement("td");
      cell.colSpan = row.children.length;
      row.nextElementSibling.appendChild(cell);
      cell.appendChild(form);
      form.hidden = false;
      form.querySelector("textarea").focus();
      form.querySelector("button.cancel").addEventListener("click", () => {
        form.hidden = true;
        document.body.appendChild(form);
        cell.parentElement.remove();
      }, { once: true });
    });
  });
}

// Upload: drag and drop (or choose) files; POST them with the CSRF token.
function uploads() {
  const zone = document.getElementById("drop-zone");
  if (!zone) return;
  const input = document.getElementById("file-input");
  const list = document.getElementById("upload-results");
  const send = async (files) => {
    if (!files.length) return;
    const body = new FormData();
    for (const file of files) body.append("files", file);
    body.append("prefix", document.getElementById("upload-prefix").value);
    const item = document.createElement("li");
    item.textContent = `uploading ${files.length} file(s)…`;
    list.prepend(item);
    const response = await fetch(zone.closest("form").action, {
      method: "POST", body, credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken() },
    });
    const answer = await response.json();
    item.remove();
    if (!response.ok) {
      const failed = document.createElement("li");
      failed.className = "flash flash-error";
      failed.textContent = answer.error || `upload refused (${response.status})`;
      list.prepend(failed);
      return;
    }
    for (const upload of answer.uploads) {
      const line = document.createElement("li");
      line.className = "upload";
      line.append(`${upload.file} → ${upload.key} → `);
      if (upload.url) {
        const link = Object.assign(document.createElement("a"), { href: upload.url, textContent: "execution " + upload.execution.split(":").pop() });
        line.append(link);
      } else {
        line.append("execution not started yet (see Executions)");
      }
      list.prepend(line);
    }
  };
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    send(Array.from(event.dataTransfer.files));
  });
  input.addEventListener("change", () => { send(Array.from(input.files)); input.value = ""; });
}

document.addEventListener("DOMContentLoaded", () => {
  autoRefresh();
  graphClicks();
  eventFilter();
  deadLetterEditors();
  uploads();
});
