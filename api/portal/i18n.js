// The portal's words in Vietnamese (the default) and English, and locale-aware formatting.
// Category names, health effects and advice come from the API (QĐ 1459/QĐ-TCMT Bảng 1, 4, 5),
// not from here, so the page and the API never disagree.

const STRINGS = {
  vi: {
    "skip": "Bỏ qua, đến nội dung chính",
    "kicker": "Cổng thông tin môi trường",
    "title": "Chất lượng không khí tỉnh Nam Định",
    "doc.title": "Chất lượng không khí và cảnh báo – Tỉnh Nam Định",
    "live.connecting": "Đang kết nối…",
    "live.open": "Cập nhật trực tiếp",
    "live.retry": "Mất kết nối, đang thử lại…",
    "lang.button": "English",
    "lang.hint": "Chuyển trang sang tiếng Anh",
    "loading": "Đang tải dữ liệu…",
    "error": "Không tải được dữ liệu. Trang sẽ tự thử lại sau ít phút.",
    "alerts.title": "Cảnh báo đang có hiệu lực",
    "alerts.none": "Hiện không có cảnh báo lũ hay cảnh báo chất lượng không khí.",
    "alerts.flood": "Cảnh báo lũ",
    "alerts.air": "Chất lượng không khí",
    "alerts.since": "Từ {time}",
    "alerts.at": "Tại: {place}",
    "alerts.value": "Giá trị đo: {value}",
    "alerts.ack": "Cơ quan chức năng đã tiếp nhận",
    "severity.critical": "Nghiêm trọng",
    "severity.warning": "Cảnh báo",
    "map.title": "Bản đồ các trạm quan trắc",
    "map.caption": "Ranh giới tỉnh là gần đúng, chỉ để định hướng. Chọn một trạm để xem chi tiết.",
    "map.label": "Bản đồ tỉnh Nam Định và các trạm quan trắc",
    "map.gauge": "{name}: mực nước {value} m",
    "legend.title": "Thang màu VN_AQI",
    "stations.title": "VN_AQI theo giờ tại các trạm",
    "stations.hour": "Giờ {from}–{to}, ngày {date}",
    "stations.none": "Chưa có trạm quan trắc công khai.",
    "station.nodata": "Chưa đủ số liệu để tính VN_AQI giờ này.",
    "station.dominant": "Chất ô nhiễm chính: {p}",
    "station.sub": "Chỉ số thành phần AQIx",
    "station.pollutant": "Chất ô nhiễm",
    "station.current": "Nồng độ mới nhất (µg/m³)",
    "station.normal": "Người bình thường",
    "station.sensitive": "Người nhạy cảm",
    "station.chart": "VN_AQI 24 giờ qua",
    "station.chart.summary": "VN_AQI 24 giờ qua tại {name}: thấp nhất {min}, cao nhất {max}, {n} giờ có số liệu.",
    "station.chart.empty": "Chưa có số liệu VN_AQI trong 24 giờ qua.",
    "station.method": "Phương pháp: VN_AQI (QĐ 1459/QĐ-TCMT). Nguồn: trạm quan trắc tự động, nền tảng dothi.",
    "station.marker": "{name}: VN_AQI {value}, {category}",
    "station.marker.nodata": "{name}: chưa có VN_AQI",
    "station.main": "chính",
    "rivers.title": "Mực nước sông",
    "rivers.none": "Chưa có trạm thủy văn công khai.",
    "rivers.level": "Mực nước",
    "rivers.nodata": "chưa có số liệu",
    "coords": "{lat}° B, {lon}° Đ",
    "at": "lúc {time}",
    "about.title": "Về số liệu",
    "about.method.label": "Phương pháp:",
    "about.method": "VN_AQI theo Quyết định 1459/QĐ-TCMT ngày 12/11/2019 của Tổng cục Môi trường; AQI giờ tính từ trung bình 1 giờ, bụi PM2.5 và PM10 theo phương pháp NowCast.",
    "about.source.label": "Nguồn dữ liệu:",
    "about.source": "Các trạm quan trắc không khí tự động, liên tục trên địa bàn tỉnh Nam Định, thu nhận và tính toán bởi nền tảng đô thị thông minh dothi. Số liệu tự động, chưa qua kiểm tra, hiệu chỉnh chính thức.",
    "about.sensitive": "Người nhạy cảm: người già, trẻ em, người mắc bệnh hô hấp, tim mạch.",
  },
  en: {
    "skip": "Skip to main content",
    "kicker": "Environmental information portal",
    "title": "Air quality in Nam Định province",
    "doc.title": "Air quality and warnings – Nam Định province",
    "live.connecting": "Connecting…",
    "live.open": "Live updates",
    "live.retry": "Connection lost, retrying…",
    "lang.button": "Tiếng Việt",
    "lang.hint": "Switch the page to Vietnamese",
    "loading": "Loading data…",
    "error": "The data could not be loaded. The page will try again in a few minutes.",
    "alerts.title": "Active warnings",
    "alerts.none": "There are no flood or air quality warnings at the moment.",
    "alerts.flood": "Flood warning",
    "alerts.air": "Air quality",
    "alerts.since": "Since {time}",
    "alerts.at": "At: {place}",
    "alerts.value": "Measured: {value}",
    "alerts.ack": "Acknowledged by the authorities",
    "severity.critical": "Critical",
    "severity.warning": "Warning",
    "map.title": "Map of monitoring stations",
    "map.caption": "The province outline is approximate, for orientation only. Choose a station for its details.",
    "map.label": "Map of Nam Định province and its monitoring stations",
    "map.gauge": "{name}: water level {value} m",
    "legend.title": "VN_AQI colour scale",
    "stations.title": "Hourly VN_AQI at the stations",
    "stations.hour": "Hour {from}–{to}, {date}",
    "stations.none": "There is no public monitoring station yet.",
    "station.nodata": "Not enough data to compute this hour's VN_AQI.",
    "station.dominant": "Dominant pollutant: {p}",
    "station.sub": "Sub-indices (AQIx)",
    "station.pollutant": "Pollutant",
    "station.current": "Latest concentration (µg/m³)",
    "station.normal": "General public",
    "station.sensitive": "Sensitive groups",
    "station.chart": "VN_AQI over the last 24 hours",
    "station.chart.summary": "VN_AQI over the last 24 hours at {name}: lowest {min}, highest {max}, {n} hours with data.",
    "station.chart.empty": "No VN_AQI for the last 24 hours yet.",
    "station.method": "Method: VN_AQI (Decision 1459/QĐ-TCMT). Source: automatic monitoring station, dothi platform.",
    "station.marker": "{name}: VN_AQI {value}, {category}",
    "station.marker.nodata": "{name}: no VN_AQI yet",
    "station.main": "dominant",
    "rivers.title": "River levels",
    "rivers.none": "There is no public river gauge yet.",
    "rivers.level": "Water level",
    "rivers.nodata": "no data yet",
    "coords": "{lat}° N, {lon}° E",
    "at": "at {time}",
    "about.title": "About the data",
    "about.method.label": "Method:",
    "about.method": "VN_AQI as defined by Decision 1459/QĐ-TCMT of 12/11/2019 (Vietnam Environment Administration); the hourly AQI uses 1-hour means, PM2.5 and PM10 the NowCast.",
    "about.source.label": "Data source:",
    "about.source": "The automatic, continuous air quality stations of Nam Định province, collected and computed by the dothi smart-city platform. Automatic data, not yet officially checked or corrected.",
    "about.sensitive": "Sensitive groups: the elderly, children, people with respiratory or heart disease.",
  },
};

export const POLLUTANTS = ["pm25", "pm10", "o3", "no2", "so2", "co"];
const POLLUTANT_LABELS = { pm25: "PM2.5", pm10: "PM10", o3: "O₃", no2: "NO₂", so2: "SO₂", co: "CO" };
const LOCALES = { vi: "vi-VN", en: "en-GB" };
const TZ = "Asia/Ho_Chi_Minh";

let current = "vi";

export function lang() {
  return current;
}

export function setLang(value) {
  current = value === "en" ? "en" : "vi";
  document.documentElement.lang = current;
  document.title = t("doc.title");
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
}

/** The string `key` in the current language with `{name}` placeholders filled. */
export function t(key, vars = {}) {
  const text = STRINGS[current][key] ?? STRINGS.vi[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

export function pollutant(key) {
  return POLLUTANT_LABELS[key] ?? key;
}

export function number(value, digits = 1) {
  return new Intl.NumberFormat(LOCALES[current], {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(value);
}

export function time(iso) {
  return new Intl.DateTimeFormat(LOCALES[current], {
    timeZone: TZ, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso));
}

export function date(iso) {
  return new Intl.DateTimeFormat(LOCALES[current], {
    timeZone: TZ, day: "2-digit", month: "2-digit", year: "numeric",
  }).format(new Date(iso));
}

export function dateTime(iso) {
  return `${time(iso)} ${date(iso)}`;
}

/** The local hour (0–23) of an instant, for chart labels. */
export function localHour(iso) {
  return Number(new Intl.DateTimeFormat("en-GB", { timeZone: TZ, hour: "2-digit", hourCycle: "h23" })
    .format(new Date(iso)));
}
