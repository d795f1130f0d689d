// The Ministry's dashboard (SPEC §8.6): charts from GET /api/v1/stats, drawn as SVG by the
// few lines below rather than by a charting library: horizontal bars are all it needs, the
// page keeps its `script-src 'self'` policy with no third-party code to audit or update, and
// it weighs a few kilobytes on a provincial office's connection.
const $ = (id) => document.getElementById(id);
const KEY = "vaxpass.admin-token";
const SVG = "http://www.w3.org/2000/svg";
const COLORS = { signed: "#2e86c1", rejected: "#e67e22", overdue: "#c0392b", compliance: "#27ae60", reason: "#8e44ad" };

function token() { return sessionStorage.getItem(KEY); }

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// rows: [{label, values: [{value, color, series}]}]; one bar per value, grouped per row.
// `format` writes a value; `max` fixes the scale (e.g. 1 for shares).
function barChart(target, rows, { format = (v) => v.toLocaleString("vi-VN"), max } = {}) {
  const box = $(target);
  box.textContent = "";
  if (!rows.length) { box.textContent = "Chưa có số liệu · No data yet"; return; }
  const labelWidth = 150, width = 560, bar = 14, gap = 6;
  const per = rows[0].values.length;
  const rowHeight = per * bar + gap;
  const top = Math.max(max || 0, ...rows.flatMap((r) => r.values.map((v) => v.value || 0)), 1);
  const svg = el("svg", { class: "chart", viewBox: `0 0 ${width} ${rows.length * rowHeight + 4}`, role: "img" });
  rows.forEach((row, i) => {
    const y = i * rowHeight;
    svg.append(el("text", { x: labelWidth - 6, y: y + (per * bar) / 2 + 4, "text-anchor": "end" }, row.label));
    row.values.forEach((v, j) => {
      const w = ((width - labelWidth - 70) * (v.value || 0)) / top;
      const rect = el("rect", {
        x: labelWidth, y: y + j * bar, width: Math.max(w, v.value ? 1 : 0), height: bar - 2, fill: v.color,
        "data-series": v.series, "data-group": row.group, "data-value": v.value ?? "",
      });
      rect.append(el("title", {}, `${row.label}: ${v.series} ${v.value === null ? "-" : format(v.value)}`));
      svg.append(rect);
      svg.append(el("text", { x: labelWidth + w + 4, y: y + j * bar + bar - 4 }, v.value === null ? "–" : format(v.value)));
    });
  });
  box.append(svg);
}

const label = (g) => (g.province ? `${g.group} ${g.province}` : g.group).slice(0, 24);

async function load() {
  const res = await Promise.all(["province", "facility"].map((by) =>
    fetch(`/api/v1/stats?by=${by}`, { headers: { Authorization: "Bearer " + token() } })));
  if (res.some((r) => r.status === 401)) { signOut("Mã quản trị không đúng · Wrong admin token"); return; }
  const [provinces, facilities] = await Promise.all(res.map((r) => r.json()));
  const groups = provinces.groups;
  $("as-of").textContent = "Số liệu lúc · As of " + new Date(provinces.at).toLocaleString("vi-VN");
  const t = provinces.total || {};
  const share = t.closed_within_48h_share;
  $("totals").textContent = "";
  for (const [name, value] of [
    ["Dòng đã ký · Rows signed", t.rows_signed], ["Bị từ chối · Rejected", t.rows_rejected],
    ["Hộ chiếu · Passports", t.passports], ["Đã thu hồi · Revoked", t.revoked_passports],
    ["Yêu cầu mở · Open", t.requests_open], ["Quá hạn · Overdue", t.requests_overdue],
    ["Đã đóng · Closed", t.requests_closed],
    ["Trong 48 giờ · Within 48 h", share == null ? "–" : (share * 100).toFixed(1) + " %"],
  ]) {
    const span = document.createElement("span");
    span.className = "total";
    span.textContent = `${name}: ${typeof value === "number" ? value.toLocaleString("vi-VN") : value ?? 0}  `;
    $("totals").append(span);
  }
  barChart("chart-signed", groups.map((g) => ({ label: label(g), group: g.group, values: [
    { value: g.rows_signed, color: COLORS.signed, series: "signed" },
    { value: g.rows_rejected, color: COLORS.rejected, series: "rejected" },
  ] })));
  barChart("chart-reasons", Object.entries((provinces.total || {}).rejected_by_reason || {})
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => ({ label: reason, group: reason, values: [{ value: n, color: COLORS.reason, series: "rejected" }] })));
  barChart("chart-overdue", groups.filter((g) => g.requests_overdue > 0 || g.requests_open > 0 || g.requests_closed > 0)
    .map((g) => ({ label: label(g), group: g.group, values: [{ value: g.requests_overdue, color: COLORS.overdue, series: "overdue" }] })));
  barChart("chart-compliance", groups.filter((g) => g.closed_within_48h_share !== null)
    .map((g) => ({ label: label(g), group: g.group, values: [{ value: g.closed_within_48h_share, color: COLORS.compliance, series: "compliance" }] })),
    { format: (v) => (v * 100).toFixed(1) + " %", max: 1 });
  barChart("chart-worst", facilities.groups.filter((g) => g.requests_overdue > 0)
    .sort((a, b) => b.requests_overdue - a.requests_overdue || a.group.localeCompare(b.group)).slice(0, 10)
    .map((g) => ({ label: label(g), group: g.group, values: [{ value: g.requests_overdue, color: COLORS.overdue, series: "overdue" }] })));
  // When the charts were drawn, for scripts/bench-stats.
  document.body.dataset.drawnMs = Math.round(performance.now());
  document.body.dataset.loaded = "yes";
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  $("work").hidden = true;
  $("login").hidden = false;
  if (message) $("login").querySelector(".hint").textContent = message;
}

function start() {
  if (!token()) return;
  $("login").hidden = true;
  $("work").hidden = false;
  load().catch(() => { $("as-of").textContent = "Không kết nối được · Cannot reach the server"; });
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("token").value.trim());
  $("token").value = "";
  start();
});
$("logout").addEventListener("click", () => signOut());
$("reload").addEventListener("click", () => load());
start();
