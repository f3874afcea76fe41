// The 24-hour VN_AQI chart of a station: one bar per hour in the category's official colour,
// drawn as SVG by hand (no chart library, nothing downloaded).

import { s } from "./dom.js";
import { localHour, t, time } from "./i18n.js";

const W = 320;
const H = 132;
const PAD = { left: 30, right: 6, top: 8, bottom: 22 };
const HOUR_MS = 3600 * 1000;
const GRID = [50, 100, 150, 200, 300, 400, 500];

/**
 * @param {Array<{hour: string, value: number, colour_hex: string, category: string}>} points
 * @param {Date} end the end of the last hour shown (the start of the current hour)
 * @param {string} name the station's name, for the accessible summary
 * @param {Map<string, {name_vi: string, name_en: string}>} categories names by key
 * @param {string} language
 */
export function drawChart(points, end, name, categories, language) {
  const hours = 24;
  const start = end.getTime() - hours * HOUR_MS;
  const shown = points.filter((p) => {
    const at = Date.parse(p.hour);
    return at >= start && at < end.getTime();
  });
  const values = shown.map((p) => p.value);
  const top = Math.max(100, Math.ceil(Math.max(0, ...values) / 50) * 50);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const slot = plotW / hours;

  const summary = shown.length
    ? t("station.chart.summary", { name, min: Math.min(...values), max: Math.max(...values), n: shown.length })
    : t("station.chart.empty");
  const svg = s("svg", {
    class: "chart",
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": summary,
    "data-bars": shown.length,
  });
  svg.append(s("title", {}, summary));

  for (const g of GRID.filter((v) => v <= top)) {
    svg.append(
      s("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(g), y2: y(g) }),
      s("text", { class: "axis", x: PAD.left - 4, y: y(g) + 3, "text-anchor": "end" }, g),
    );
  }
  svg.append(s("line", { class: "base", x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0) }));

  for (let i = 0; i < hours; i += 1) {
    const at = new Date(start + i * HOUR_MS).toISOString();
    if (localHour(at) % 6 === 0) {
      svg.append(s("text", { class: "axis", x: PAD.left + i * slot, y: H - 6, "text-anchor": "middle" }, time(at)));
    }
  }
  for (const p of shown) {
    const i = Math.round((Date.parse(p.hour) - start) / HOUR_MS);
    const cat = categories.get(p.category);
    const label = cat ? (language === "en" ? cat.name_en : cat.name_vi) : p.category;
    const bar = s("rect", {
      class: "bar",
      x: PAD.left + i * slot + 1,
      y: y(p.value),
      width: Math.max(1, slot - 2),
      height: Math.max(1, y(0) - y(p.value)),
      fill: p.colour_hex,
      "data-category": p.category,
    });
    bar.append(s("title", {}, `${time(p.hour)}: VN_AQI ${p.value} (${label})`));
    svg.append(bar);
  }
  return svg;
}
