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
};
const $ = (id) => document.getElementById(id);
function row(label, value) {
  const dt = document.createElement("dt"); dt.textContent = label;
  const dd = document.createElement("dd"); dd.textContent = value;
  $("details").append(dt, dd);
}
function show(v) {
  const box = $("result");
  box.className = v.valid ? "valid" : "invalid";
  box.style.display = "block";
  $("verdict").textContent = v.valid ? "✓ HỢP LỆ · VALID" : "✗ KHÔNG HỢP LỆ · NOT VALID";
  const r = REASONS[v.reason] || [v.reason, v.reason];
  $("reason").textContent = v.valid ? "" : `${r[0]} · ${r[1]} (${v.reason})`;
  $("details").textContent = "";
  const p = v.payload;
  if (p && p.nam) {
    row("Họ và tên · Name", [p.nam.fn, p.nam.gn].filter(Boolean).join(" "));
    row("Ngày sinh · Date of birth", p.dob || "");
    const doses = (v.history || []).concat(p.v || []);
    doses.forEach((d) => row(`Mũi ${d.dn}/${d.sd} · Dose ${d.dn}/${d.sd}`, `${d.dt} · ${d.mp}`));
  }
  if (v.signer) row("Cơ sở ký · Signed by", v.signer.subject);
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
$("check").addEventListener("click", () =>
  send(JSON.stringify({ qr: $("qr").value.trim() }), { "Content-Type": "application/json" }));
$("photo").addEventListener("change", () => {
  const file = $("photo").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("image", file);
  send(form, {});
});
