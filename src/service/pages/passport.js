const $ = (id) => document.getElementById(id);
$("lookup").addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = $("result");
  box.style.display = "block";
  box.textContent = "Đang tìm… · Searching…";
  const body = JSON.stringify({ id_number: $("id_number").value, dob: $("dob").value, claim_code: $("claim_code").value });
  try {
    const res = await fetch("/api/v1/passports/lookup", { method: "POST", body, headers: { "Content-Type": "application/json" } });
    const json = await res.json();
    box.textContent = "";
    if (res.status === 429) { box.textContent = "Quá nhiều lần thử, vui lòng thử lại sau · Too many attempts, try again later"; return; }
    if (!res.ok) { box.textContent = json.message || json.error; return; }
    if (!json.passports.length) {
      box.textContent = "Không tìm thấy. Kiểm tra lại thông tin và mã nhận · Not found. Check your details and claim code.";
      return;
    }
    for (const p of json.passports) {
      const div = document.createElement("div");
      div.className = "passport";
      const img = document.createElement("img");
      img.src = p.png; img.alt = "QR";
      const code = document.createElement("p"); code.textContent = p.uvci;
      div.append(img, code);
      for (const [label, href] of [["PNG", p.png], ["SVG", p.svg], ["PDF", p.pdf]]) {
        const a = document.createElement("a"); a.href = href; a.textContent = label; a.download = ""; div.append(a);
      }
      box.append(div);
    }
  } catch (e) {
    box.textContent = "Không kết nối được · Cannot reach the server";
  }
});

// Report a problem (SPEC §8.5): the answer never says whether the person is known.
const STATUS = {
  open: "Đang xử lý · Open",
  resolved: "Đã xử lý · Resolved",
  rejected: "Không cần sửa · Closed without change",
};
const when = (iso) => (iso ? new Date(iso).toLocaleString("vi-VN") : "");

function show(box, lines) {
  box.style.display = "block";
  box.textContent = "";
  for (const [label, value, cls] of lines) {
    const p = document.createElement("p");
    if (cls) p.className = cls;
    if (label) { const b = document.createElement("b"); b.textContent = label + ": "; p.append(b); }
    p.append(document.createTextNode(value));
    box.append(p);
  }
}

$("report").addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = $("report-result");
  show(box, [["", "Đang gửi… · Sending…"]]);
  const body = JSON.stringify({
    id_number: $("r_id_number").value, dob: $("r_dob").value, facility_code: $("r_facility").value.trim(),
    kind: $("r_kind").value, message: $("r_message").value, contact: $("r_contact").value || null,
  });
  try {
    const res = await fetch("/api/v1/corrections", { method: "POST", body, headers: { "Content-Type": "application/json" } });
    const json = await res.json();
    if (res.status === 429) { show(box, [["", "Quá nhiều lần thử, vui lòng thử lại sau · Too many attempts, try again later"]]); return; }
    if (!res.ok) { show(box, [["Lỗi · Error", json.message || json.error, "error"]]); return; }
    show(box, [
      ["", "Đã nhận. Hãy lưu hai mã dưới đây để kiểm tra · Received. Keep both codes to check on it.", "ok"],
      ["Mã yêu cầu · Request id", json.request_id, "code"],
      ["Mã tra cứu · Status code", json.status_code, "code"],
      ["Hạn xử lý · Due by", when(json.due_at)],
    ]);
    $("c_request").value = json.request_id;
    $("c_code").value = json.status_code;
  } catch (e) {
    show(box, [["", "Không kết nối được · Cannot reach the server", "error"]]);
  }
});

$("check").addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = $("check-result");
  show(box, [["", "Đang tìm… · Searching…"]]);
  const id = encodeURIComponent($("c_request").value.trim().toUpperCase());
  const code = encodeURIComponent($("c_code").value.trim());
  try {
    const res = await fetch(`/api/v1/corrections/${id}?code=${code}`);
    if (res.status === 404) { show(box, [["", "Không tìm thấy. Kiểm tra lại hai mã · Not found. Check both codes.", "error"]]); return; }
    if (res.status === 429) { show(box, [["", "Quá nhiều lần thử, vui lòng thử lại sau · Too many attempts, try again later"]]); return; }
    const json = await res.json();
    if (!res.ok) { show(box, [["Lỗi · Error", json.message || json.error, "error"]]); return; }
    const lines = [["Trạng thái · Status", STATUS[json.status] || json.status, json.status], ["Hạn xử lý · Due by", when(json.due_at)]];
    if (json.closed_at) lines.push(["Đóng lúc · Closed", when(json.closed_at)]);
    if (json.note) lines.push(["Ghi chú · Note", json.note]);
    show(box, lines);
  } catch (e) {
    show(box, [["", "Không kết nối được · Cannot reach the server", "error"]]);
  }
});
