// The operations console: open alerts by severity and age, filters by area and kind, an alert's
// details and history, acknowledge / resolve / comment (needs a key with alerts:write), and the
// device's other alerts. `/ops#alert=<id>` opens an alert (Grafana's alert tables link here).
// The API key lives in sessionStorage: it is gone when the tab closes.

import { h } from "/portal/assets/dom.js";

const API = "/api/v1";
const KEY_STORE = "dothi.ops.key";
const POLL_MS = 15_000;
const TZ = "Asia/Ho_Chi_Minh";

const SEVERITY = { critical: ["Nghiêm trọng", 0], warning: ["Cảnh báo", 1], info: ["Thông tin", 2] };
const STATE = { open: "Mới", acknowledged: "Đã tiếp nhận", resolved: "Đã xử lý xong" };
const EVENT = {
  opened: "Mở cảnh báo",
  acknowledged: "Tiếp nhận",
  resolved: "Xử lý xong",
  commented: "Ghi chú",
  escalated: "Tăng mức độ",
  deescalated: "Giảm mức độ",
  flapping: "Dao động (tạm ngừng thông báo)",
  stable: "Ổn định trở lại",
};
const KIND = {
  threshold: "Vượt ngưỡng",
  rate: "Thay đổi nhanh",
  spike: "Giá trị đột biến",
  flatline: "Số liệu không đổi",
  stale: "Mất tín hiệu",
  counter_reset: "Công tơ bị đặt lại",
  consistency: "Số liệu mâu thuẫn",
  anomaly: "Bất thường",
  lamp_daylight: "Đèn sáng ban ngày",
  noise: "Tiếng ồn vượt QCVN 26",
  river_alarm: "Báo động lũ",
  aqi_category: "Chất lượng không khí",
};
const RESOLUTION = { auto: "tự động (điều kiện hết)", manual: "bởi người vận hành", rule_removed: "quy tắc bị gỡ" };

const state = { key: null, alerts: [], areas: new Map(), current: null, timer: null };
const $ = (selector) => document.querySelector(selector);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (response.status === 401) {
    logout("Khóa không hợp lệ hoặc đã bị thu hồi: hãy đăng nhập lại.");
  }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.detail) || `HTTP ${response.status}`);
  }
  return data;
}

function when(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat("vi-VN", {
    timeZone: TZ, hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit",
    year: "numeric", hourCycle: "h23",
  }).format(new Date(iso));
}

function age(iso) {
  const minutes = Math.round((Date.parse(iso) - Date.now()) / 60000);
  const rtf = new Intl.RelativeTimeFormat("vi", { numeric: "auto" });
  if (Math.abs(minutes) < 60) return rtf.format(minutes, "minute");
  if (Math.abs(minutes) < 48 * 60) return rtf.format(Math.round(minutes / 60), "hour");
  return rtf.format(Math.round(minutes / 1440), "day");
}

function areaName(id) {
  return state.areas.get(id)?.name ?? id ?? "—";
}

function severityBadge(severity) {
  return h("span", { class: `sev sev-${severity}` }, SEVERITY[severity]?.[0] ?? severity);
}

// --- login -------------------------------------------------------------------------------------

function keyId(key) {
  const parts = key.split("_");
  return parts.length >= 3 ? parts[1] : "";
}

function logout(message) {
  sessionStorage.removeItem(KEY_STORE);
  state.key = null;
  clearInterval(state.timer);
  $("#console").hidden = true;
  $("#who").hidden = true;
  $("#login").hidden = false;
  const error = $("#login-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("#key").value = "";
  $("#key").focus();
}

async function login(key) {
  state.key = key;
  try {
    await api("/alerts?limit=1");
  } catch (error) {
    if (error.status !== 401) logout(`Không kết nối được máy chủ: ${error.message}`);
    return;
  }
  sessionStorage.setItem(KEY_STORE, key);
  $("#login").hidden = true;
  $("#console").hidden = false;
  $("#who").hidden = false;
  $("#key-id").textContent = `Khóa ${keyId(key)}`;
  await loadAreas();
  await loadAlerts();
  await openFromHash(false);
  clearInterval(state.timer);
  state.timer = setInterval(poll, POLL_MS);
}

// --- list --------------------------------------------------------------------------------------

function flatten(nodes, depth, out) {
  for (const area of nodes) {
    out.push([area, depth]);
    flatten(area.children || [], depth + 1, out);
  }
  return out;
}

async function loadAreas() {
  const tree = await api("/areas");
  const select = $("#f-area");
  const options = [h("option", { value: "" }, "Toàn tỉnh")];
  for (const [area, depth] of flatten(tree, 0, [])) {
    state.areas.set(area.id, area);
    if (area.level === "province") continue;
    options.push(h("option", { value: area.id }, `${"— ".repeat(Math.max(0, depth - 1))}${area.name}`));
  }
  select.replaceChildren(...options);
}

function sortAlerts(alerts) {
  // Most severe first; within a severity, the oldest (longest waiting) first.
  return [...alerts].sort((a, b) =>
    (SEVERITY[a.severity]?.[1] ?? 9) - (SEVERITY[b.severity]?.[1] ?? 9)
    || Date.parse(a.opened_at) - Date.parse(b.opened_at));
}

function fillKinds() {
  const select = $("#f-kind");
  const chosen = select.value;
  const kinds = [...new Set([...Object.keys(KIND), ...state.alerts.map((a) => a.kind)])];
  select.replaceChildren(h("option", { value: "" }, "Tất cả"),
    ...kinds.map((k) => h("option", { value: k }, KIND[k] ?? k)));
  select.value = chosen;
}

function renderList() {
  const kind = $("#f-kind").value;
  const shown = sortAlerts(state.alerts.filter((a) => !kind || a.kind === kind));
  $("#summary").textContent = `${shown.length} cảnh báo`
    + (shown.length ? `, ${shown.filter((a) => a.severity === "critical").length} nghiêm trọng` : "");
  $("#alerts tbody").replaceChildren(...shown.map((a) => h("tr", {
    "data-alert": a.id, class: `sev-${a.severity}${a.id === state.current ? " selected" : ""}`,
  },
  h("td", {}, severityBadge(a.severity)),
  h("td", {},
    h("button", { type: "button", class: "open", "data-alert": a.id,
      onclick: () => { location.hash = `alert=${a.id}`; } }, `#${a.id} ${a.title}`),
    h("div", { class: "muted" }, `${KIND[a.kind] ?? a.kind} · ${a.device_id}`)),
  h("td", {}, areaName(a.area_id)),
  h("td", { class: "state" }, STATE[a.state] ?? a.state),
  h("td", {}, h("time", { datetime: a.opened_at, title: when(a.opened_at) }, age(a.opened_at))))));
}

async function loadAlerts() {
  const params = new URLSearchParams({ limit: "1000" });
  const chosen = $("#f-state").value;
  for (const s of chosen === "active" ? ["open", "acknowledged"] : [chosen]) params.append("state", s);
  if ($("#f-area").value) params.set("area_id", $("#f-area").value);
  const page = await api(`/alerts?${params}`);
  state.alerts = page.items;
  fillKinds();
  renderList();
}

// --- one alert ---------------------------------------------------------------------------------

function field(label, value) {
  if (value === null || value === undefined || value === "") return [];
  return [h("dt", {}, label), h("dd", {}, String(value))];
}

function renderDetail(alert, history, deviceAlerts) {
  $("#detail").hidden = false;
  $("#detail").dataset.alert = alert.id;
  $("#detail").dataset.state = alert.state;
  $("#detail-title").textContent = `#${alert.id} ${alert.title}`;
  $("#detail-badges").replaceChildren(h("span", {}, severityBadge(alert.severity), " ",
    h("span", { class: `state-badge state-${alert.state}` }, STATE[alert.state] ?? alert.state),
    alert.flapping ? h("span", { class: "flapping" }, " dao động") : null));
  $("#detail-fields").replaceChildren(
    ...field("Nội dung", alert.message),
    ...field("Loại", `${KIND[alert.kind] ?? alert.kind} (quy tắc ${alert.rule_id})`),
    ...field("Thiết bị", alert.device_id),
    ...field("Khu vực", areaName(alert.area_id)),
    ...field("Chỉ tiêu", alert.metric),
    ...field("Giá trị", alert.value),
    ...field("Ngưỡng", alert.threshold),
    ...field("Bắt đầu", when(alert.started_at)),
    ...field("Mở lúc", when(alert.opened_at)),
    ...field("Tiếp nhận", alert.acknowledged_at && `${alert.acknowledged_by}, ${when(alert.acknowledged_at)}`),
    ...field("Xử lý xong", alert.resolved_at
      && `${alert.resolved_by}, ${when(alert.resolved_at)} – ${RESOLUTION[alert.resolution] ?? ""}`),
  );
  $("#ack").disabled = alert.state !== "open";
  $("#resolve").disabled = alert.state === "resolved";
  $("#history").replaceChildren(...history.map((e) => h("li", { "data-event": e.event },
    h("time", { datetime: e.at }, when(e.at)), " ",
    h("strong", {}, EVENT[e.event] ?? e.event), ` – ${e.actor}`,
    e.comment ? h("q", {}, e.comment) : null)));
  $("#device-title").textContent = `Các cảnh báo của thiết bị ${alert.device_id}`;
  $("#device-alerts tbody").replaceChildren(...deviceAlerts.map((a) => h("tr", {},
    h("td", {}, h("a", { href: `#alert=${a.id}` }, `#${a.id}`)),
    h("td", {}, a.title),
    h("td", {}, STATE[a.state] ?? a.state),
    h("td", {}, when(a.opened_at)))));
}

async function openAlert(id, focus) {
  state.current = id;
  try {
    const alert = await api(`/alerts/${id}`);
    const [history, device] = await Promise.all([
      api(`/alerts/${id}/history`),
      api(`/alerts?device_id=${encodeURIComponent(alert.device_id)}&limit=50`),
    ]);
    renderDetail(alert, history, device.items);
  } catch (error) {
    if (error.status === 401) return;
    $("#detail").hidden = false;
    $("#detail-title").textContent = error.status === 404
      ? `Không có cảnh báo #${id} (hoặc khóa này không được xem)`
      : `Không tải được cảnh báo #${id}: ${error.message}`;
    for (const part of ["#detail-badges", "#detail-fields", "#history", "#device-alerts tbody"]) {
      $(part).replaceChildren();
    }
    $("#ack").disabled = true;
    $("#resolve").disabled = true;
  }
  renderList();
  if (focus) $("#detail-title").focus();
}

async function openFromHash(focus) {
  const match = /^#alert=(\d+)$/.exec(location.hash);
  if (match) await openAlert(Number(match[1]), focus);
}

async function act(action) {
  const id = state.current;
  const text = $("#comment").value.trim();
  const status = $("#action-status");
  const done = { acknowledge: "Đã tiếp nhận cảnh báo.", resolve: "Đã đóng cảnh báo.", comment: "Đã thêm ghi chú." };
  try {
    if (action === "comment") {
      if (!text) {
        status.textContent = "Hãy nhập nội dung ghi chú.";
        $("#comment").focus();
        return;
      }
      await api(`/alerts/${id}/comments`, { method: "POST", body: { text } });
    } else {
      await api(`/alerts/${id}/${action}`, { method: "POST", body: text ? { comment: text } : {} });
    }
    $("#comment").value = "";
    status.textContent = done[action];
  } catch (error) {
    if (error.status === 403) {
      status.textContent = "Khóa này không có quyền alerts:write: không thể thay đổi cảnh báo.";
    } else if (error.status === 409) {
      status.textContent = `Không thực hiện được: ${error.message}`;
    } else if (error.status !== 401) {
      status.textContent = `Thao tác không thành công: ${error.message}`;
    }
  }
  await Promise.all([openAlert(id, false), loadAlerts()]);
}

async function poll() {
  try {
    await loadAlerts();
    if (state.current !== null && !$("#detail").hidden) await openAlert(state.current, false);
  } catch {
    // Temporary trouble (network, 503): the next poll tries again.
  }
}

// --- start -------------------------------------------------------------------------------------

function start() {
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#key").value.trim();
    if (!key) {
      logout("Hãy nhập khóa API.");
      return;
    }
    login(key);
  });
  $("#logout").addEventListener("click", () => logout(""));
  $("#refresh").addEventListener("click", () => poll());
  $("#f-area").addEventListener("change", () => loadAlerts());
  $("#f-state").addEventListener("change", () => loadAlerts());
  $("#f-kind").addEventListener("change", () => renderList());
  $("#ack").addEventListener("click", () => act("acknowledge"));
  $("#resolve").addEventListener("click", () => act("resolve"));
  $("#add-comment").addEventListener("click", () => act("comment"));
  window.addEventListener("hashchange", () => {
    if (state.key) openFromHash(true);
  });
  const saved = sessionStorage.getItem(KEY_STORE);
  if (saved) {
    login(saved).then(() => { document.body.dataset.ready = "true"; });
  } else {
    $("#key").focus();
    document.body.dataset.ready = "true";
  }
}

start();
