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
