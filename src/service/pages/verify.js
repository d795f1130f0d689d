const REASONS = {
  OK: ["Hợp lệ", "Valid"],
  INVALID_PREFIX: ["Không phải mã hộ chiếu vắc xin (thiếu HC1:)", "Not a vaccine passport code (no HC1: prefix)"],
  BASE45_DECODING_FAILED: ["Mã bị hỏng (Base45)", "The code is damaged (Base45)"],
  DECOMPRESSION_FAILED: ["Mã bị hỏng (nén)", "The code is damaged (compression)"],
  COSE_DECODING_FAILED: ["Mã bị hỏng (chữ ký)", "The code is damaged (signature structure)"],
  CWT_DECODING_FAILED: ["Nội dung không đọc được", "The content cannot be read"],
  SCHEMA_VALIDATION_FAILED: ["Nội dung sai định dạng", "The content does not follow the format"],
  UNSUPPORTED_ALGORITHM: ["Thuật toán ký không được hỗ trợ", "Unsupported signature algorithm"],
  KEY_NOT_IN_TRUST_LIST: ["Cơ sở ký không có trong danh sách tin cậy", "The signer is not in the trust list"],
  SIGNATURE_INVALID: ["Chữ ký không hợp lệ: mã đã bị sửa", "Invalid signature: the code was altered"],
  CHAIN_INVALID: ["Chứng thư cơ sở ký không hợp lệ", "The signer's certificate chain is invalid"],
  SIGNER_NOT_YET_VALID: ["Chứng thư cơ sở ký chưa có hiệu lực", "The signer's certificate is not yet valid"],
  SIGNER_EXPIRED: ["Chứng thư cơ sở ký đã hết hạn", "The signer's certificate has expired"],
  SIGNER_REVOKED: ["Cơ sở ký đã bị thu hồi", "The signer has been revoked"],
  KEY_USAGE_MISMATCH: ["Cơ sở không được phép ký loại giấy này", "The signer may not sign this kind of certificate"],
  NOT_YET_VALID: ["Hộ chiếu chưa có hiệu lực", "The passport is not yet valid"],
  EXPIRED: ["Hộ chiếu đã hết hạn", "The passport has expired"],
  REVOKED: ["Hộ chiếu đã bị thu hồi", "The passport has been revoked"],
  UNSUPPORTED_FORMAT: ["Không nhận ra loại chứng nhận", "Unknown kind of certificate"],
  FORMAT_INVALID: ["Chứng nhận sai cấu trúc", "The certificate's structure cannot be read"],
};
// EU value set vaccines-covid-19-names (eu-dcc-valuesets 2.12.0): product names, not codes.
const PRODUCTS = {
  "EU/1/21/1529": "Vaxzevria (AstraZeneca)", "EU/1/20/1528": "Comirnaty (Pfizer-BioNTech)",
  "EU/1/20/1507": "Spikevax (Moderna)", "EU/1/20/1525": "Jcovden (Janssen)", "EU/1/21/1618": "Nuvaxovid (Novavax)",
  "EU/1/21/1624": "COVID-19 Vaccine Valneva", "EU/1/22/1709": "VidPrevtyn Beta (Sanofi)",
  "EU/1/21/1580": "Bimervax (HIPRA)", "BBIBP-CorV": "Vero Cell (Sinopharm BBIBP-CorV)",
  "Hayat-Vax": "Hayat-Vax", "Sputnik-V": "Sputnik V (Gam-COVID-Vac)", "Sputnik-Light": "Sputnik Light",
  "Abdala": "Abdala", "Soberana-02": "Soberana 02", "Soberana-Plus": "Soberana Plus", "CoronaVac": "CoronaVac (Sinovac)",
  "Covaxin": "Covaxin (Bharat Biotech)", "Covishield": "Covishield (Serum Institute of India)",
  "Covovax": "Covovax", "Convidecia": "Convidecia (CanSino)", "NVX-CoV2373": "Novavax NVX-CoV2373",
  "MVC-COV1901": "MVC COVID-19 vaccine", "R-COVI": "R-COVI", "EpiVacCorona": "EpiVacCorona",
  "CoviVac": "CoviVac", "Inactivated-SARS-CoV-2-Vero-Cell": "Inactivated SARS-CoV-2 (Vero Cell)",
  "WIBP-CorV": "WIBP-CorV (Sinopharm Wuhan)", "Vaxzevria": "Vaxzevria (AstraZeneca)",
};
const $ = (id) => document.getElementById(id);
const product = (code) => PRODUCTS[code] || code || "?";

function row(label, value) {
  const dt = document.createElement("dt"); dt.textContent = label;
  const dd = document.createElement("dd"); dd.textContent = value;
  $("details").append(dt, dd);
}

let scanning = false;
function show(v) {
  const box = $("result");
  const entry = v.entry;
  const passed = v.valid && (!entry || entry.result === "passed");
  box.className = !v.valid ? "red" : passed ? "green" : "yellow";
  box.style.display = "block";
  scanning = false;
  $("verdict").textContent = !v.valid ? "✗ KHÔNG HỢP LỆ · NOT VALID"
    : passed ? "✓ HỢP LỆ · VALID"
    : entry.result === "failed" ? "! HỢP LỆ, KHÔNG ĐỦ ĐIỀU KIỆN NHẬP CẢNH · VALID, ENTRY RULES NOT MET"
    : "? HỢP LỆ, CHƯA XÁC ĐỊNH ĐƯỢC ĐIỀU KIỆN NHẬP CẢNH · VALID, ENTRY RULES OPEN";
  const r = REASONS[v.reason] || [v.reason, v.reason];
  $("reason").textContent = v.valid ? "" : `${r[0]} · ${r[1]} (${v.reason})`;
  $("entry").textContent = "";
  for (const rule of (v.valid && entry ? entry.failed : [])) {
    const li = document.createElement("li");
    const open = rule.result === "open" ? " (không đánh giá được · could not be evaluated)" : "";
    li.textContent = `${rule.description.vi}${open}`;
    const en = document.createElement("div");
    en.className = "en";
    en.textContent = `${rule.description.en} — ${rule.identifier}`;
    li.append(en);
    $("entry").append(li);
  }
  $("details").textContent = "";
  const p = v.payload;
  if (v.holder) {
    row("Họ và tên · Name", v.holder.name || "");
    row("Ngày sinh · Date of birth", v.holder.dob || "");
  } else if (p && p.nam) {
    row("Họ và tên · Name", [p.nam.fn, p.nam.gn].filter(Boolean).join(" ") || [p.nam.fnt, p.nam.gnt].join(" "));
    row("Ngày sinh · Date of birth", p.dob || "");
  }
  if (p && p.nam) {
    const doses = (v.history || []).concat(p.v || []);
    doses.forEach((d) => row(`Mũi ${d.dn}/${d.sd} · Dose ${d.dn}/${d.sd}`, `${d.dt} · ${product(d.mp)}`));
  } else if (Array.isArray(v.vaccinations)) {
    v.vaccinations.forEach((d) => row(`Mũi ${d.dose || "?"} · Dose ${d.dose || "?"}`, `${d.date} · ${product(d.product)}`));
  }
  if (v.signer) row("Cơ sở ký · Signed by", v.signer.subject);
  $("next").focus();
}
function error(message) {
  show({ valid: false, reason: message });
}
async function send(body, headers) {
  try {
    const res = await fetch("/api/v1/verify", { method: "POST", body, headers });
    const json = await res.json();
    if (res.ok) show(json); else error(json.message || json.error);
  } catch (e) {
    error("Không kết nối được · Cannot reach the server");
  }
}
function sendText(text) {
  if (text) send(JSON.stringify({ qr: text.trim() }), { "Content-Type": "application/json" });
}
$("check").addEventListener("click", () => sendText($("qr").value));
$("photo").addEventListener("change", () => {
  const file = $("photo").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("image", file);
  send(form, {});
});

// A handheld scanner is a keyboard: it types the code, then Enter. In the text box, Enter
// submits (Shift+Enter is a new line); anywhere else the keys are collected and Enter
// submits them.
let typed = "";
document.addEventListener("keydown", (e) => {
  if (e.target === $("qr")) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendText($("qr").value); }
    return;
  }
  if (e.key === "Enter") {
    if (typed) { e.preventDefault(); sendText(typed); typed = ""; }
  } else if (e.key.length === 1 && !e.ctrlKey && !e.metaKey && !e.altKey) {
    typed += e.key;
  }
});

// The camera reads continuously. Linux Chromium has no BarcodeDetector and a maintained,
// small JavaScript QR decoder does not exist, so a downscaled frame goes to the service's
// photo decoder (one at a time, ~3 per second); frames without a QR code answer 422 and the
// next frame is tried. The answer stays on screen until "Scan next".
const MAX_FRAME_WIDTH = 800;
const FRAME_INTERVAL_MS = 300;
const video = $("camera");
const canvas = document.createElement("canvas");
function nextFrame() { setTimeout(scanFrame, FRAME_INTERVAL_MS); }
async function scanFrame() {
  if (!scanning || video.readyState < 2 || !video.videoWidth) return nextFrame();
  const scale = Math.min(1, MAX_FRAME_WIDTH / video.videoWidth);
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  if (!blob || !scanning) return nextFrame();
  const form = new FormData();
  form.append("image", blob, "frame.jpg");
  try {
    const res = await fetch("/api/v1/verify", { method: "POST", body: form });
    if (res.ok && scanning) show(await res.json());
  } catch (e) {
    // The network hiccuped: try the next frame.
  }
  nextFrame();
}
async function startCamera() {
  const status = $("camera-status");
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    video.srcObject = stream;
    await video.play().catch(() => {});
    status.innerHTML = "";
    status.append("Đưa mã QR vào khung hình ", Object.assign(document.createElement("span"), { className: "en", textContent: "Hold the QR code in front of the camera" }));
    scanning = true;
    scanFrame();
  } catch (e) {
    $("camera-box").querySelector("video").style.display = "none";
    status.textContent = "Không mở được camera: dán mã, dùng máy quét hoặc chụp ảnh · No camera: paste, scan or take a photo";
  }
}
$("next").addEventListener("click", () => {
  $("result").style.display = "none";
  $("qr").value = "";
  // The frame loop never stops; it only skips frames while an answer is shown.
  if (video.srcObject) scanning = true;
});
if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) startCamera();
else $("camera-status").textContent = "Không có camera · No camera";
