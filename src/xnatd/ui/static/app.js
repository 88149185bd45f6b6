// xnatd pages: the little that needs a script. Everything works without it, with plainer answers.
"use strict";

function copyText(text, button) {
  const done = () => { const old = button.textContent; button.textContent = "Copied"; setTimeout(() => { button.textContent = old; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => window.prompt("Copy:", text));
  } else {
    window.prompt("Copy:", text);
  }
}

// Delete buttons: ask in a dialog; the server asks on a page of its own when there is no script.
function confirmForms() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); return; }
      form.querySelector("input[name=confirmed]").value = "yes";
    });
  });
}

// Uploads: one request per file, its raw bytes as the body, so the bar can show the progress.
function sendFile(url, file, csrf, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new Error(xhr.responseText || xhr.statusText)));
    xhr.onerror = () => reject(new Error("network error"));
    xhr.send(file);
  });
}

function uploadUrl(form, file) {
  const value = (name) => form.elements[name].value.trim();
  const folder = value("folder") || "DEFAULT";
  const sub = value("subfolder").replace(/^\/+|\/+$/g, "");
  const name = file.webkitRelativePath || file.name;
  const path = (sub ? sub + "/" : "") + name;
  const parts = [...value("holder").split("/"), "resources", folder, "files", ...path.split("/")];
  const query = [];
  if (form.elements.overwrite.checked) query.push("overwrite=true");
  if (form.elements.extract.checked) query.push("extract=true");
  return "/app/upload/" + parts.map(encodeURIComponent).join("/") + (query.length ? "?" + query.join("&") : "");
}

function uploadForm() {
  const form = document.getElementById("upload");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = [...form.elements.files.files, ...form.elements.tree.files];
    const bar = form.querySelector("progress");
    const status = form.querySelector(".status");
    if (!files.length) { status.textContent = "Choose files or a folder first."; return; }
    const total = files.reduce((sum, f) => sum + f.size, 0) || 1;
    let sent = 0;
    bar.hidden = false; bar.max = total; bar.value = 0;
    form.querySelector("button").disabled = true;
    try {
      for (const [i, file] of files.entries()) {
        status.textContent = `Uploading ${i + 1} of ${files.length}: ${file.webkitRelativePath || file.name}`;
        await sendFile(uploadUrl(form, file), file, form.dataset.csrf, (loaded) => { bar.value = sent + loaded; });
        sent += file.size; bar.value = sent;
      }
      status.textContent = `Uploaded ${files.length} file${files.length === 1 ? "" : "s"}.`;
      window.location.reload();
    } catch (err) {
      status.textContent = "Upload failed: " + err.message;
      form.querySelector("button").disabled = false;
    }
  });
}

function localTimes() {
  document.querySelectorAll(".ms[data-ms]").forEach((cell) => {
    const ms = Number(cell.dataset.ms);
    if (ms) cell.textContent = new Date(ms).toLocaleString();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button.copy").forEach((b) => b.addEventListener("click", () => copyText(b.dataset.copy, b)));
  confirmForms();
  uploadForm();
  localTimes();
});
