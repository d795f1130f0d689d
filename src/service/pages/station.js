// The facility's page (SPEC §8.6): sign a doses.csv, see its rejected rows, close citizens'
// correction requests. The token stays in sessionStorage: gone when the browser session ends.
const $ = (id) => document.getElementById(id);
const KEY = "vaxpass.facility-token";
const KINDS = {
  missing_dose: "Thiếu mũi · Missing dose",
  wrong_data: "Sai thông tin · Wrong data",
  not_mine: "Không phải của tôi · Not mine",
};

function token() { return sessionStorage.getItem(KEY); }

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, options.headers || {});
  const res = await fetch(path, Object.assign({}, options, { headers }));
  if (res.status === 401) { signOut("Mã truy cập không đúng hoặc đã hết hạn · The token is wrong or expired"); throw new Error("401"); }
  return res;
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  $("work").hidden = true;
  $("login").hidden = false;
  if (message) $("upload-status").textContent = "";
  const hint = $("login").querySelector(".hint");
  if (message) hint.textContent = message;
}

function hours(seconds) {
  const h = Math.floor(Math.abs(seconds) / 3600), m = Math.floor((Math.abs(seconds) % 3600) / 60);
  return h + " giờ " + m + " phút";
}

async function loadQueue() {
  const status = $("queue-status");
  const list = $("queue");
  status.textContent = "Đang tải… · Loading…";
  const res = await api("/api/v1/corrections?status=open&limit=1000");
  const json = await res.json();
  if (!res.ok) { status.textContent = json.message || json.error; return; }
  list.textContent = "";
  // Least time left first (overdue ones lead).
  const requests = json.requests.sort((a, b) => a.seconds_left - b.seconds_left);
  status.textContent = requests.length ? requests.length + " yêu cầu đang mở · open requests" : "Không có yêu cầu nào · No open requests";
  for (const r of requests) {
    const li = document.createElement("li");
    li.className = "request" + (r.overdue ? " overdue" : "");
    li.dataset.id = r.request_id;
    const left = document.createElement("p");
    left.className = "left";
    left.textContent = r.overdue
      ? "QUÁ HẠN " + hours(r.seconds_left) + " · OVERDUE by " + Math.floor(-r.seconds_left / 3600) + " h"
      : "Còn " + hours(r.seconds_left) + " · " + Math.floor(r.seconds_left / 3600) + " h left";
    const what = document.createElement("p");
    what.className = "what";
    what.textContent = (KINDS[r.kind] || r.kind) + " — " + (r.id_number || "?") + " · " + (r.dob || "?") + (r.contact ? " · " + r.contact : "");
    const msg = document.createElement("blockquote");
    msg.textContent = r.message || "";
    const form = document.createElement("form");
    form.className = "resolve";
    const outcome = document.createElement("select");
    for (const [value, label] of [["resolved", "Đã sửa · Resolved"], ["rejected", "Không cần sửa · Rejected"]]) {
      const o = document.createElement("option"); o.value = value; o.textContent = label; outcome.append(o);
    }
    const note = document.createElement("input");
    note.placeholder = "Ghi chú cho người dân · Note to the citizen";
    note.maxLength = 1000;
    const button = document.createElement("button");
    button.type = "submit";
    button.textContent = "Đóng · Close";
    form.append(outcome, note, button);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      const res = await api(`/api/v1/corrections/${r.request_id}/resolve`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ outcome: outcome.value, note: note.value }),
      });
      if (!res.ok) { const j = await res.json(); status.textContent = j.message || j.error; button.disabled = false; return; }
      await loadQueue();
      status.textContent = "Đã đóng yêu cầu · Request closed. " + status.textContent;
    });
    li.append(left, what, msg, form);
    list.append(li);
  }
}

// A cell a spreadsheet will not run as a formula (OWASP CSV injection), as the CLI writes
// rejected.csv: a leading ' is added to a cell starting with = + - @ tab, CR or ' itself.
function csvCell(value) {
  let v = String(value ?? "");
  if (/^[=+\-@\t\r']/.test(v)) v = "'" + v;
  return /[",\r\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
}

let rejectedRows = [];

function showRejected(rows) {
  rejectedRows = rows;
  $("rejected-box").hidden = rows.length === 0;
  $("rejected-count").textContent = rows.length;
  const body = $("rejected").querySelector("tbody");
  body.textContent = "";
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const v of [r.record_id, r.reason, r.detail, r.suggestion]) {
      const td = document.createElement("td"); td.textContent = v || ""; tr.append(td);
    }
    body.append(tr);
  }
}

$("rejected-csv").addEventListener("click", () => {
  const lines = [["record_id", "reason", "detail", "suggestion"].join(",")];
  for (const r of rejectedRows) lines.push([r.record_id, r.reason, r.detail, r.suggestion].map(csvCell).join(","));
  const blob = new Blob(["\ufeff" + lines.join("\r\n") + "\r\n"], { type: "text/csv;charset=utf-8" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "rejected.csv";
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
});

function upload(file) {
  // XMLHttpRequest, not fetch: it reports upload progress.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/batches");
    xhr.setRequestHeader("Authorization", "Bearer " + token());
    xhr.setRequestHeader("Content-Type", "text/csv");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) setProgress(50 * e.loaded / e.total, "Đang tải lên · Uploading"); };
    xhr.onload = () => resolve({ status: xhr.status, json: JSON.parse(xhr.responseText || "null") });
    xhr.onerror = () => reject(new Error("network"));
    xhr.send(file);
  });
}

function setProgress(percent, text) {
  const bar = $("progress");
  bar.hidden = false;
  bar.value = Math.max(0, Math.min(100, percent));
  $("upload-status").textContent = text + " … " + Math.round(bar.value) + " %";
}

$("upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  showRejected([]);
  let answer;
  try { answer = await upload(file); } catch (e) { $("upload-status").textContent = "Không kết nối được · Cannot reach the server"; return; }
  if (answer.status === 401) { signOut("Mã truy cập không đúng hoặc đã hết hạn · The token is wrong or expired"); return; }
  if (answer.status !== 202) { $("upload-status").textContent = (answer.json && (answer.json.message || answer.json.error)) || ("HTTP " + answer.status); return; }
  const id = answer.json.batch_id;
  for (;;) {
    const res = await api(`/api/v1/batches/${id}`);
    const b = await res.json();
    if (b.status === "running") {
      const share = b.persons_total ? b.persons_done / b.persons_total : 0;
      setProgress(50 + 50 * share, "Đang ký · Signing " + b.persons_done + "/" + b.persons_total);
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    if (b.status !== "done") { $("upload-status").textContent = "Lô bị lỗi · The batch failed" + (b.error ? ": " + b.error : ""); return; }
    setProgress(100, "Xong · Done");
    const s = b.summary || {};
    $("upload-status").textContent = `Xong · Done: ${s.signed_rows} dòng đã ký · rows signed, ${s.rejected_rows} bị từ chối · rejected, ${s.passports} hộ chiếu · passports`;
    showRejected(b.rejected || []);
    return;
  }
});

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("token").value.trim());
  $("token").value = "";
  start();
});
$("logout").addEventListener("click", () => signOut());
$("reload").addEventListener("click", () => loadQueue());

function start() {
  if (!token()) return;
  $("login").hidden = true;
  $("work").hidden = false;
  $("who").textContent = "Đã đăng nhập · Signed in";
  loadQueue().catch(() => {});
}
start();
