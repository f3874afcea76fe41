// The provincial portal: current VN_AQI per station (QĐ 1459/QĐ-TCMT Bảng 3: colour, station and
// place, dominant pollutant and every AQIx, advice, method, source), a map, 24-hour charts,
// public flood and air-quality warnings, river levels; kept live by the API's event stream.

import { drawChart } from "./chart.js";
import { getJSON, h, textOn } from "./dom.js";
import * as i18n from "./i18n.js";
import { drawMap } from "./map.js";

const { t } = i18n;
const API = "/api/v1";
const LIVE_METRICS = [...i18n.POLLUTANTS, "water_level"];
const ALERTS_EVERY_MS = 60_000;
const AQI_EVERY_MS = 5 * 60_000;
const AQI_AFTER_READING_MS = 10_000; // readings trickle in; recompute the AQI once they settle
const RECONNECT_MS = 10_000;
const NO_DATA = "#6B6B6B";

const state = {
  outline: null,
  areas: new Map(),
  categories: [],
  categoryByKey: new Map(),
  stations: [],
  history: {},
  alerts: [],
  gauges: [],
  latest: new Map(), // "device:metric" → reading
  aqiTimer: null,
};

const $ = (selector) => document.querySelector(selector);

function flattenAreas(nodes) {
  for (const area of nodes) {
    state.areas.set(area.id, area);
    flattenAreas(area.children || []);
  }
}

function areaName(id) {
  const area = state.areas.get(id);
  if (!area) return "";
  return i18n.lang() === "en" ? area.name_en || area.name : area.name;
}

/** "Phường Trần Hưng Đạo, Thành phố Nam Định": the area and the city/district above it. */
function place(areaId) {
  const area = state.areas.get(areaId);
  if (!area) return "";
  const names = [areaName(area.id)];
  const parent = state.areas.get(area.parent_id);
  if (parent && parent.level !== "province") names.push(areaName(parent.id));
  return names.join(", ");
}

function categoryName(category) {
  return i18n.lang() === "en" ? category.name_en : category.name_vi;
}

function formatValue(metric, value) {
  if (value === null || value === undefined) return "";
  if (metric === "water_level") return `${i18n.number(value, 2)} m`;
  if (metric === "aqi") return `VN_AQI ${Math.round(value)}`;
  if (i18n.POLLUTANTS.includes(metric)) return `${i18n.number(value, 1)} µg/m³`;
  return i18n.number(value, 1);
}

// --- rendering -------------------------------------------------------------------------------

function renderLegend() {
  $("#legend").replaceChildren(...state.categories.map((c) => {
    const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.backgroundColor = c.colour_hex;
    return h("li", { "data-category": c.key }, swatch, `${c.low}–${c.high}: ${categoryName(c)}`);
  }));
}

function liveValue(deviceId, metric) {
  const reading = state.latest.get(`${deviceId}:${metric}`);
  return h("span", { "data-live": `${deviceId}:${metric}` },
    reading ? i18n.number(reading.value, 1) : "–");
}

function stationBody(st) {
  const aqi = st.aqi;
  const name = st.name || st.device_id;
  const colour = aqi ? aqi.category.colour_hex : NO_DATA;
  const badge = h("div", { class: "aqi-badge", "data-category": aqi ? aqi.category.key : "none" },
    h("span", { class: "aqi-value" }, aqi ? aqi.value : "–"),
    h("span", { class: "aqi-method" }, "VN_AQI"),
    h("span", { class: "aqi-name" }, aqi ? categoryName(aqi.category) : ""));
  badge.style.backgroundColor = colour;
  badge.style.color = textOn(colour);

  const coords = st.lat == null ? "" : t("coords", {
    lat: i18n.number(st.lat, 4), lon: i18n.number(st.lon, 4),
  });
  const body = [
    h("h3", { id: `station-${st.device_id}-name`, lang: "vi" }, name),
    h("p", { class: "place" }, [place(st.area_id), coords].filter(Boolean).join(" · ")),
  ];
  if (aqi) {
    const c = aqi.category;
    const en = i18n.lang() === "en";
    body.push(
      h("p", { class: "category" }, h("strong", {}, categoryName(c)), " – ",
        en ? c.effect_en : c.effect_vi),
      h("p", { class: "dominant" }, t("station.dominant", { p: i18n.pollutant(aqi.dominant) })),
      h("table", { class: "subindex" },
        h("caption", {}, t("station.sub")),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, t("station.pollutant")),
          h("th", { scope: "col" }, "AQIx"),
          h("th", { scope: "col" }, t("station.current")))),
        h("tbody", {}, i18n.POLLUTANTS.filter((p) => p in aqi.sub_indices).map((p) => h("tr",
          { class: p === aqi.dominant ? "dominant" : null },
          h("th", { scope: "row" }, i18n.pollutant(p),
            p === aqi.dominant ? ` (${t("station.main")})` : ""),
          h("td", {}, aqi.sub_indices[p]),
          h("td", {}, liveValue(st.device_id, p)))))),
      h("dl", { class: "advice" },
        h("dt", {}, t("station.normal")), h("dd", {}, en ? c.advice_en : c.advice_vi),
        h("dt", {}, t("station.sensitive")),
        h("dd", {}, en ? c.advice_sensitive_en : c.advice_sensitive_vi)),
    );
  } else {
    body.push(h("p", { class: "nodata" }, t("station.nodata")));
  }
  const end = new Date(Date.parse(st.hour) + 3600 * 1000);
  body.push(
    h("figure", { class: "chart-box" },
      drawChart(state.history[st.device_id] || [], end, name, state.categoryByKey, i18n.lang()),
      h("figcaption", {}, t("station.chart"))),
    h("p", { class: "meta" }, t("station.method")),
  );
  return [badge, h("div", { class: "station-body" }, ...body)];
}

function renderStations() {
  const box = $("#stations");
  box.setAttribute("aria-busy", "false");
  if (!state.stations.length) {
    box.replaceChildren(h("p", { class: "muted" }, t("stations.none")));
    return;
  }
  const hour = state.stations[0].hour;
  $("#stations-hour").textContent = t("stations.hour", {
    from: i18n.time(hour),
    to: i18n.time(new Date(Date.parse(hour) + 3600 * 1000).toISOString()),
    date: i18n.date(hour),
  });
  // Worst air first: what matters most is seen first, on a phone too.
  const sorted = [...state.stations].sort((a, b) => (b.aqi?.value ?? -1) - (a.aqi?.value ?? -1));
  box.replaceChildren(...sorted.map((st) => h("article", {
    class: "station",
    id: `station-${st.device_id}`,
    tabindex: "-1",
    "data-station": st.device_id,
    "aria-labelledby": `station-${st.device_id}-name`,
  }, ...stationBody(st))));
}

function renderAlerts() {
  const box = $("#alerts");
  box.setAttribute("aria-busy", "false");
  if (!state.alerts.length) {
    box.replaceChildren(h("p", { class: "ok" }, t("alerts.none")));
    return;
  }
  box.replaceChildren(h("ul", { class: "alert-list" }, state.alerts.map((a) => {
    const where = [a.device_name, place(a.area_id)].filter(Boolean).join(", ");
    const value = formatValue(a.metric, a.value);
    return h("li", { class: `alert sev-${a.severity}`, "data-alert": a.id },
      h("p", { class: "alert-kind" },
        h("span", { class: "sev" }, t(`severity.${a.severity}`)), " ", t(`alerts.${a.category}`)),
      h("p", { class: "alert-title", lang: "vi" }, a.title),
      h("p", { class: "alert-meta" },
        [t("alerts.at", { place: where }), value && t("alerts.value", { value }),
          t("alerts.since", { time: i18n.dateTime(a.opened_at) })].filter(Boolean).join(" · ")),
      a.state === "acknowledged" ? h("p", { class: "alert-ack" }, t("alerts.ack")) : null);
  })));
}

function renderRivers() {
  const box = $("#rivers");
  if (!state.gauges.length) {
    box.replaceChildren(h("p", { class: "muted" }, t("rivers.none")));
    return;
  }
  box.replaceChildren(h("ul", { class: "river-list" }, state.gauges.map((g) => {
    const reading = state.latest.get(`${g.id}:water_level`);
    const alert = state.alerts.find((a) => a.device_id === g.id);
    return h("li", { "data-gauge": g.id, class: alert ? `sev-${alert.severity}` : null },
      h("span", { class: "river-name", lang: "vi" }, g.name || g.id),
      " ",
      h("span", { class: "river-level" }, `${t("rivers.level")}: `,
        h("span", { "data-live": `${g.id}:water_level`, "data-digits": "2" },
          reading ? i18n.number(reading.value, 2) : "–"), " m"),
      reading ? h("span", { class: "muted" }, ` ${t("at", { time: i18n.time(reading.ts) })}`) : null,
      alert ? h("span", { class: "river-alert" }, ` ${t(`severity.${alert.severity}`)}`) : null);
  })));
}

function select(deviceId) {
  const card = document.getElementById(`station-${deviceId}`);
  if (!card) return;
  card.scrollIntoView({ block: "start" });
  card.focus({ preventScroll: true });
}

function renderMap() {
  if (!state.outline) return;
  const places = [...state.areas.values()]
    .filter((a) => (a.level === "city" || a.level === "district") && a.lat != null)
    .map((a) => ({
      lon: a.lon,
      lat: a.lat,
      name: i18n.lang() === "en"
        ? (a.name_en || a.name).replace(/ District$/, "")
        : a.name.replace(/^Huyện /, "").replace(/^Thành phố /, "TP "),
    }));
  const gauges = state.gauges.map((g) => ({
    ...g, level: state.latest.get(`${g.id}:water_level`)?.value ?? null,
  }));
  drawMap($("#map"), state.outline, {
    stations: state.stations, gauges, places, language: i18n.lang(), onSelect: select,
  });
}

function renderAll() {
  renderLegend();
  renderAlerts();
  renderStations();
  renderRivers();
  renderMap();
}

function showError(where) {
  $(where).replaceChildren(h("p", { class: "error", role: "alert" }, t("error")));
}

// --- data --------------------------------------------------------------------------------------

async function loadAqi() {
  const [stations, history] = await Promise.all([
    getJSON(`${API}/aqi/stations`),
    getJSON("/portal/data/history"),
  ]);
  state.stations = stations;
  state.history = history;
}

async function loadAlerts() {
  state.alerts = await getJSON("/portal/data/alerts");
}

async function loadLatest() {
  const query = LIVE_METRICS.map((m) => `metric=${m}`).join("&");
  for (const r of await getJSON(`${API}/latest?${query}`)) {
    state.latest.set(`${r.device_id}:${r.metric}`, r);
  }
}

async function loadStatic() {
  const [outline, areas, categories, gauges] = await Promise.all([
    getJSON("assets/nam-dinh.geojson"),
    getJSON(`${API}/areas`),
    getJSON("/portal/data/categories"),
    getJSON(`${API}/devices?kind=river_gauge&limit=1000`),
  ]);
  state.outline = outline;
  flattenAreas(areas);
  state.categories = categories;
  state.categoryByKey = new Map(categories.map((c) => [c.key, c]));
  state.gauges = gauges.items;
}

async function refreshAqi() {
  clearTimeout(state.aqiTimer);
  state.aqiTimer = null;
  try {
    await loadAqi();
    renderStations();
    renderMap();
  } catch {
    // Keep what is shown; the next reading or the periodic refresh tries again.
  }
}

async function refreshAlerts() {
  try {
    await loadAlerts();
    renderAlerts();
    renderRivers();
  } catch {
    // as above
  }
}

// --- live --------------------------------------------------------------------------------------

function setLive(mode) {
  const status = $("#live-status");
  status.dataset.state = mode;
  status.dataset.i18n = { open: "live.open", retry: "live.retry" }[mode] || "live.connecting";
  status.textContent = t(status.dataset.i18n);
}

function onReading(reading) {
  state.latest.set(`${reading.device_id}:${reading.metric}`, reading);
  for (const el of document.querySelectorAll(`[data-live="${reading.device_id}:${reading.metric}"]`)) {
    el.textContent = i18n.number(reading.value, Number(el.dataset.digits || 1));
    el.classList.remove("updated");
    void el.offsetWidth; // restart the highlight animation
    el.classList.add("updated");
  }
  if (i18n.POLLUTANTS.includes(reading.metric) && state.aqiTimer === null) {
    state.aqiTimer = setTimeout(refreshAqi, AQI_AFTER_READING_MS);
  }
}

function connectLive() {
  const query = LIVE_METRICS.map((m) => `metric=${m}`).join("&");
  const source = new EventSource(`${API}/live?${query}`);
  source.addEventListener("open", () => setLive("open"));
  source.addEventListener("reading", (event) => onReading(JSON.parse(event.data)));
  source.addEventListener("error", () => {
    setLive("retry");
    if (source.readyState === EventSource.CLOSED) {
      // The server refused (busy): EventSource gives up, so start over a little later.
      setTimeout(connectLive, RECONNECT_MS);
    }
  });
}

// --- start -------------------------------------------------------------------------------------

function setLanguage(value) {
  i18n.setLang(value);
  const button = $("#lang-toggle");
  button.textContent = t("lang.button");
  button.lang = value === "en" ? "vi" : "en";
  try {
    localStorage.setItem("dothi.lang", value);
  } catch {
    // private browsing: the choice lasts for this page only
  }
  renderAll();
}

function initialLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked === "en" || asked === "vi") return asked;
  try {
    return localStorage.getItem("dothi.lang") === "en" ? "en" : "vi";
  } catch {
    return "vi";
  }
}

async function start() {
  i18n.setLang(initialLanguage());
  $("#lang-toggle").textContent = t("lang.button");
  $("#lang-toggle").lang = i18n.lang() === "en" ? "vi" : "en";
  $("#lang-toggle").addEventListener("click", () => setLanguage(i18n.lang() === "vi" ? "en" : "vi"));
  try {
    await loadStatic();
    await Promise.all([loadAqi(), loadAlerts(), loadLatest()]);
  } catch {
    showError("#stations");
    showError("#alerts");
    setTimeout(() => location.reload(), 5 * ALERTS_EVERY_MS);
    return;
  }
  renderAll();
  connectLive();
  setInterval(refreshAlerts, ALERTS_EVERY_MS);
  setInterval(refreshAqi, AQI_EVERY_MS);
  document.body.dataset.ready = "true";
}

start();
