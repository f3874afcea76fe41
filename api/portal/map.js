// The province map: the shipped (approximate) outline of Nam Định, district names, air quality
// stations in their VN_AQI colour and river gauges, drawn as SVG from longitude/latitude with
// an equirectangular projection (accurate enough over 70 km). No tiles, nothing downloaded.

import { s, textOn } from "./dom.js";
import { number, t } from "./i18n.js";

const WIDTH = 600;
const PAD_DEG = 0.02;

function projection(ring) {
  const lons = ring.map((p) => p[0]);
  const lats = ring.map((p) => p[1]);
  const minLon = Math.min(...lons) - PAD_DEG;
  const maxLon = Math.max(...lons) + PAD_DEG;
  const minLat = Math.min(...lats) - PAD_DEG;
  const maxLat = Math.max(...lats) + PAD_DEG;
  const kx = Math.cos((((minLat + maxLat) / 2) * Math.PI) / 180);
  const scale = WIDTH / ((maxLon - minLon) * kx);
  return {
    width: WIDTH,
    height: Math.round((maxLat - minLat) * scale),
    point: (lon, lat) => [(lon - minLon) * kx * scale, (maxLat - lat) * scale],
  };
}

/**
 * Draw (or redraw) the map into `container`.
 * @param {HTMLElement} container
 * @param {object} outline GeoJSON FeatureCollection with the province polygon
 * @param {{stations: Array, gauges: Array, places: Array, language: string, onSelect: Function}} data
 */
export function drawMap(container, outline, data) {
  const ring = outline.features[0].geometry.coordinates[0];
  const proj = projection(ring);
  const path = ring.map(([lon, lat], i) => {
    const [x, y] = proj.point(lon, lat);
    return `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
  }).join("") + "Z";

  const svg = s("svg", {
    class: "map-svg",
    viewBox: `0 0 ${proj.width} ${proj.height}`,
    role: "group",
    "aria-label": t("map.label"),
  });
  svg.append(s("path", { class: "province", d: path }));

  const places = s("g", { class: "places", "aria-hidden": "true" });
  for (const place of data.places) {
    const [x, y] = proj.point(place.lon, place.lat);
    places.append(s("text", { x, y, "text-anchor": "middle" }, place.name));
  }
  svg.append(places);

  const gauges = s("g", { class: "gauges" });
  for (const g of data.gauges) {
    if (g.lat == null || g.lon == null) continue;
    const [x, y] = proj.point(g.lon, g.lat);
    const label = g.level == null
      ? `${g.name}: ${t("rivers.nodata")}`
      : t("map.gauge", { name: g.name, value: number(g.level, 2) });
    gauges.append(s("g", { class: "gauge", role: "img", "aria-label": label, "data-gauge": g.id },
      s("title", {}, label),
      s("path", { d: `M${x},${y - 9}L${x + 8},${y + 6}L${x - 8},${y + 6}Z` }),
    ));
  }
  svg.append(gauges);

  const markers = s("g", { class: "markers" });
  for (const st of data.stations) {
    if (st.lat == null || st.lon == null) continue;
    const [x, y] = proj.point(st.lon, st.lat);
    const aqi = st.aqi;
    const colour = aqi ? aqi.category.colour_hex : "#6B6B6B";
    const name = st.name || st.device_id;
    const label = aqi
      ? t("station.marker", {
        name, value: aqi.value,
        category: data.language === "en" ? aqi.category.name_en : aqi.category.name_vi,
      })
      : t("station.marker.nodata", { name });
    const marker = s("g", {
      class: "marker",
      tabindex: 0,
      role: "button",
      "aria-label": label,
      "data-station": st.device_id,
      transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
    },
    s("title", {}, label),
    s("circle", { r: 13, fill: colour }),
    s("text", { y: 4, "text-anchor": "middle", fill: textOn(colour) }, aqi ? aqi.value : "–"));
    marker.addEventListener("click", () => data.onSelect(st.device_id));
    marker.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        data.onSelect(st.device_id);
      }
    });
    markers.append(marker);
  }
  svg.append(markers);
  container.replaceChildren(svg);
}
