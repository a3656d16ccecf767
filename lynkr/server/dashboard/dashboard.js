// lynkr dashboard: polls /dashboard/api/summary and draws it with small hand-written SVG charts.
// No build step, no dependencies, nothing fetched from outside lynkr.
"use strict";

(() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = { blue: "#4fa3ff", orange: "#f5a524", red: "#e5484d", green: "#46c37b", violet: "#a78bfa", teal: "#2dd4bf" };
  const PALETTE = Object.values(COLORS);
  const POLL_MS = 3000;
  const params = new URLSearchParams(location.search);
  let win = params.get("window") || "15m";
  let last = null;
  let timer = null;

  // --- formatting -------------------------------------------------------------------------------

  const int = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US"));
  const ms = (v) => {
    if (v == null) return "–";
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 1 : 2) + " s";
    return (v >= 10 ? Math.round(v) : Math.round(v * 10) / 10) + " ms";
  };
  const usd = (v) => {
    if (v == null) return "–";
    if (v === 0) return "$0";
    if (v < 0.01) return "$" + v.toPrecision(2);
    return "$" + v.toFixed(v < 10 ? 3 : 2);
  };
  const compact = (n) => {
    if (n == null) return "–";
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (a >= 1e3) return (n / 1e3).toFixed(1) + "k";
    return String(Math.round(n * 100) / 100);
  };
  const pct = (v) => (v == null ? "–" : (v * 100).toFixed(v < 0.1 ? 1 : 0) + "%");
  const clock = (t) => {
    const d = new Date(t * 1000);
    return d.toTimeString().slice(0, 5);
  };
  const stamp = (t) => new Date(t * 1000).toLocaleTimeString("en-GB");

  // --- SVG helpers ------------------------------------------------------------------------------

  function svgEl(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }

  function title(parent, text) {
    const t = svgEl("title", {}, parent);
    t.textContent = text;
  }

  function niceMax(max) {
    if (!(max > 0)) return 1;
    const exp = Math.pow(10, Math.floor(Math.log10(max)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= max) return m * exp;
    return 10 * exp;
  }

  function frame(container) {
    container.textContent = "";
    const width = Math.max(container.clientWidth || 0, 240);
    const height = Math.max(container.clientHeight || 0, 120);
    const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" }, container);
    return { svg, width, height, left: 46, right: 10, top: 8, bottom: 20 };
  }

  function axes(f, yMax, times, fmt) {
    const plotH = f.height - f.top - f.bottom;
    for (let i = 0; i <= 4; i++) {
      const y = f.top + plotH - (plotH * i) / 4;
      svgEl("line", { x1: f.left, x2: f.width - f.right, y1: y, y2: y, class: "grid-line" }, f.svg);
      const label = svgEl("text", { x: f.left - 6, y: y + 3, "text-anchor": "end" }, f.svg);
      label.textContent = fmt((yMax * i) / 4);
    }
    const n = times.length;
    const step = Math.max(1, Math.ceil(n / 5));
    for (let i = 0; i < n; i += step) {
      const label = svgEl("text", { x: xAt(f, i, n), y: f.height - 5, "text-anchor": "middle" }, f.svg);
      label.textContent = clock(times[i]);
    }
  }

  function xAt(f, i, n) {
    const plotW = f.width - f.left - f.right;
    return f.left + (n <= 1 ? plotW / 2 : (plotW * (i + 0.5)) / n);
  }

  function yAt(f, v, yMax) {
    const plotH = f.height - f.top - f.bottom;
    return f.top + plotH - (plotH * v) / yMax;
  }

  function empty(f, container, text) {
    const t = svgEl("text", { x: f.width / 2, y: f.height / 2, "text-anchor": "middle", class: "empty" }, f.svg);
    t.textContent = text || "no requests in this window";
    container.dataset.points = "0";
  }

  function legend(container, items) {
    const div = document.createElement("div");
    div.className = "legend";
    for (const { name, color } of items) {
      const span = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = color;
      span.append(swatch, name);
      div.appendChild(span);
    }
    container.appendChild(div);
  }

  // lines over time; series: [{name, values, color}] (null values leave gaps)
  function lineChart(container, times, series, fmt) {
    const f = frame(container);
    f.height -= 18; // room for the legend
    f.svg.setAttribute("viewBox", `0 0 ${f.width} ${f.height}`);
    f.svg.setAttribute("height", f.height);
    const all = series.flatMap((s) => s.values.filter((v) => v != null));
    if (!all.length) {
      empty(f, container);
      legend(container, series);
      return;
    }
    const yMax = niceMax(Math.max(...all));
    axes(f, yMax, times, fmt);
    let total = 0;
    for (const s of series) {
      let d = "";
      let pen = false;
      let points = 0;
      s.values.forEach((v, i) => {
        if (v == null) { pen = false; return; }
        d += `${pen ? "L" : "M"}${xAt(f, i, times.length).toFixed(1)},${yAt(f, v, yMax).toFixed(1)}`;
        pen = true;
        points++;
      });
      const path = svgEl("path", { d, class: "series", stroke: s.color, "data-series": s.name, "data-points": points }, f.svg);
      title(path, s.name);
      s.values.forEach((v, i) => {
        if (v == null) return;
        const dot = svgEl("circle", { cx: xAt(f, i, times.length), cy: yAt(f, v, yMax), r: 2.2, fill: s.color, class: "point" }, f.svg);
        title(dot, `${s.name} at ${clock(times[i])}: ${fmt(v)}`);
      });
      total += points;
    }
    container.dataset.points = String(total);
    legend(container, series);
  }

  // stacked bars over time, with an optional line on its own scale (drawn over the bars)
  function barChart(container, times, stacks, fmt, line) {
    const f = frame(container);
    f.height -= 18;
    f.svg.setAttribute("viewBox", `0 0 ${f.width} ${f.height}`);
    const sums = times.map((_, i) => stacks.reduce((a, s) => a + (s.values[i] || 0), 0));
    const max = Math.max(0, ...sums);
    if (!(max > 0)) {
      empty(f, container, "nothing counted in this window");
      legend(container, line ? [...stacks, line] : stacks);
      return;
    }
    const yMax = niceMax(max);
    axes(f, yMax, times, fmt);
    const plotW = f.width - f.left - f.right;
    const bw = Math.max(1, (plotW / times.length) * 0.7);
    let bars = 0;
    times.forEach((t, i) => {
      let acc = 0;
      for (const s of stacks) {
        const v = s.values[i] || 0;
        if (!v) continue;
        const y0 = yAt(f, acc, yMax);
        const y1 = yAt(f, acc + v, yMax);
        const rect = svgEl("rect", { x: xAt(f, i, times.length) - bw / 2, y: y1, width: bw, height: Math.max(0.5, y0 - y1),
          fill: s.color, class: "bar", "data-series": s.name }, f.svg);
        title(rect, `${s.name} at ${clock(t)}: ${fmt(v)}`);
        acc += v;
        bars++;
      }
    });
    if (line) {
      const lmax = niceMax(Math.max(0, ...line.values.filter((v) => v != null)));
      let d = "";
      line.values.forEach((v, i) => { d += `${d ? "L" : "M"}${xAt(f, i, times.length).toFixed(1)},${yAt(f, v || 0, lmax).toFixed(1)}`; });
      const path = svgEl("path", { d, class: "series", stroke: line.color, "data-series": line.name, "data-points": line.values.length }, f.svg);
      title(path, `${line.name}: ${fmt(line.values[line.values.length - 1] || 0)}`);
      const label = svgEl("text", { x: f.width - f.right, y: f.top + 10, "text-anchor": "end" }, f.svg);
      label.textContent = `${line.name} ${fmt(line.values[line.values.length - 1] || 0)}`;
    }
    container.dataset.points = String(bars);
    legend(container, line ? [...stacks, line] : stacks);
  }

  // horizontal bars: items [{label, value}]
  function hbarChart(container, heading, items) {
    const f = frame(container);
    const head = svgEl("text", { x: 0, y: 11, class: "bar-label" }, f.svg);
    head.textContent = heading;
    if (!items.length) {
      empty(f, container, "no requests");
      return;
    }
    const max = Math.max(...items.map((x) => x.value), 1);
    const total = items.reduce((a, x) => a + x.value, 0);
    const rowH = Math.min(24, (f.height - 20) / items.length);
    const labelW = 90;
    items.forEach((item, i) => {
      const y = 20 + i * rowH;
      const w = ((f.width - labelW - 50) * item.value) / max;
      const label = svgEl("text", { x: labelW - 6, y: y + rowH * 0.65, "text-anchor": "end", class: "bar-label" }, f.svg);
      label.textContent = item.label.length > 14 ? item.label.slice(0, 13) + "…" : item.label;
      const rect = svgEl("rect", { x: labelW, y: y + 2, width: Math.max(1, w), height: rowH - 4, rx: 2,
        fill: PALETTE[i % PALETTE.length], class: "bar", "data-label": item.label, "data-value": item.value }, f.svg);
      title(rect, `${item.label}: ${item.value} (${pct(item.value / total)})`);
      const value = svgEl("text", { x: labelW + Math.max(1, w) + 4, y: y + rowH * 0.65 }, f.svg);
      value.textContent = `${item.value} · ${pct(item.value / total)}`;
    });
    container.dataset.points = String(items.length);
  }

  // --- the page -----------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function text(id, value) {
    $(id).textContent = value;
  }

  function kpis(d) {
    const t = d.totals;
    const live = d.live;
    text("version", d.version ? "v" + d.version : "");
    text("kpi-requests", int(t.requests));
    const lastBucket = d.timeline.length ? d.timeline[d.timeline.length - 1] : null;
    text("kpi-rate", `${(t.requests / d.window_s).toFixed(3)}/s average` + (lastBucket ? ` · ${lastBucket.rate_per_s}/s now` : ""));
    text("kpi-errors", int(t.errors));
    text("kpi-error-rate", t.error_rate == null ? "" : pct(t.error_rate) + " of requests");
    text("kpi-latency", `${ms(t.latency_ms.p50)} / ${ms(t.latency_ms.p95)}`);
    text("kpi-latency-p99", t.latency_ms.p99 == null ? "" : "p99 " + ms(t.latency_ms.p99));
    text("kpi-ttft", ms(t.ttft_ms.p50));
    text("kpi-ttft-p95", t.ttft_ms.p95 == null ? "" : "p95 " + ms(t.ttft_ms.p95));
    text("kpi-tokens", `${compact(t.tokens.input + t.tokens.cache_read + t.tokens.cache_write)} / ${compact(t.tokens.output)}`);
    text("kpi-cached", t.tokens.cache_read ? compact(t.tokens.cache_read) + " read from cache" : "");
    text("kpi-cost", usd(t.cost_usd));
    text("kpi-unpriced", t.unpriced_requests ? `${t.unpriced_requests} requests with unknown price` : "");
    text("kpi-fallbacks", `${int(t.fallbacks)} / ${int(t.retries)}`);
    text("kpi-cache", t.cache ? `prompt cache hit rate ${pct(t.cache.hit_rate)}` : "prompt cache: no lookups");
    text("kpi-active", `${live.active_requests} / ${live.active_streams}`);
    text("kpi-shed", live.load_shed_total ? `${live.load_shed_total} shed since start` : "none shed");
  }

  function charts(d) {
    const tl = d.timeline;
    const times = tl.map((b) => b.t);
    lineChart($("chart-rate"), times, [
      { name: "requests", values: tl.map((b) => b.rate_per_s), color: COLORS.blue },
      { name: "errors", values: tl.map((b) => b.errors / d.bucket_s), color: COLORS.red },
    ], (v) => compact(v));
    lineChart($("chart-latency"), times, [
      { name: "p50", values: tl.map((b) => b.latency_p50), color: COLORS.green },
      { name: "p95", values: tl.map((b) => b.latency_p95), color: COLORS.orange },
      { name: "p99", values: tl.map((b) => b.latency_p99), color: COLORS.red },
    ], ms);
    lineChart($("chart-ttft"), times, [
      { name: "p50", values: tl.map((b) => b.ttft_p50), color: COLORS.teal },
      { name: "p95", values: tl.map((b) => b.ttft_p95), color: COLORS.violet },
    ], ms);
    barChart($("chart-tokens"), times, [
      { name: "input", values: tl.map((b) => b.input_tokens), color: COLORS.blue },
      { name: "cached input", values: tl.map((b) => b.cache_read_tokens), color: COLORS.teal },
      { name: "output", values: tl.map((b) => b.output_tokens), color: COLORS.orange },
    ], compact);
    let running = 0;
    const cumulative = tl.map((b) => (running += b.cost_usd || 0));
    barChart($("chart-cost"), times, [{ name: "cost", values: tl.map((b) => b.cost_usd || 0), color: COLORS.green }],
      usd, { name: "cumulative", values: cumulative, color: COLORS.violet });
    hbarChart($("chart-tiers"), "by tier", d.totals.by_tier.map((x) => ({ label: x.tier, value: x.requests })));
    hbarChart($("chart-providers"), "by provider", d.totals.by_provider.map((x) => ({ label: x.provider, value: x.requests })));
  }

  function cell(tr, value, cls) {
    const td = document.createElement("td");
    td.textContent = value == null ? "–" : String(value);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function tables(d) {
    const breakers = $("breakers");
    breakers.textContent = "";
    for (const b of d.live.breakers) {
      const div = document.createElement("div");
      div.className = "breaker";
      div.dataset.state = b.state;
      div.dataset.provider = b.provider;
      const dot = document.createElement("span");
      dot.className = "dot";
      const label = document.createElement("span");
      label.textContent = `${b.provider}: ${b.state.replace("_", "-")}` + (b.retry_in_s ? ` (retry in ${Math.ceil(b.retry_in_s)} s)` : "");
      div.append(dot, label);
      breakers.appendChild(div);
    }

    const providers = $("providers").tBodies[0];
    providers.textContent = "";
    for (const p of d.totals.by_provider) {
      const tr = document.createElement("tr");
      cell(tr, p.provider);
      cell(tr, int(p.requests));
      cell(tr, int(p.errors), p.errors ? "bad" : "");
      cell(tr, ms(p.latency_ms.p50));
      cell(tr, ms(p.latency_ms.p95));
      cell(tr, ms(p.latency_ms.p99));
      cell(tr, ms(p.ttft_ms.p50));
      cell(tr, usd(p.cost_usd));
      providers.appendChild(tr);
    }

    const reasons = $("fallbacks");
    reasons.textContent = "";
    if (!d.totals.fallback_reasons.length) {
      const li = document.createElement("li");
      li.textContent = "no fallbacks in this window";
      reasons.appendChild(li);
    }
    for (const r of d.totals.fallback_reasons) {
      const li = document.createElement("li");
      li.textContent = `${r.count} × ${r.reason}`;
      reasons.appendChild(li);
    }

    const recent = $("recent").tBodies[0];
    recent.textContent = "";
    for (const r of d.recent) {
      const tr = document.createElement("tr");
      tr.dataset.requestId = r.request_id;
      cell(tr, stamp(r.ts));
      cell(tr, r.request_id.length > 16 ? r.request_id.slice(0, 16) + "…" : r.request_id).title = r.request_id;
      cell(tr, r.endpoint + (r.stream ? " (stream)" : ""));
      cell(tr, r.provider ? `${r.provider} : ${r.model || (r.status >= 400 ? "(failed)" : "?")}` : "–");
      cell(tr, r.tier);
      cell(tr, r.score);
      cell(tr, r.status, r.status >= 400 ? "bad" : "");
      cell(tr, ms(r.latency_ms));
      cell(tr, ms(r.ttft_ms));
      cell(tr, `${compact(r.input_tokens + r.cache_read_tokens)} / ${compact(r.output_tokens)}`);
      cell(tr, usd(r.cost_usd));
      const reason = cell(tr, (r.fallback ? "[fallback] " : "") + (r.reason || r.error_type || ""), "reason");
      if (r.attempts.length) reason.title = "failed attempts: " + r.attempts.join(", ");
      recent.appendChild(tr);
    }
  }

  function render(d) {
    last = d;
    kpis(d);
    charts(d);
    tables(d);
    document.body.dataset.loaded = "true";
  }

  function status(state, message) {
    const s = $("status");
    s.dataset.state = state;
    text("status-text", message);
  }

  async function poll() {
    clearTimeout(timer);
    try {
      const resp = await fetch(`/dashboard/api/summary?window=${encodeURIComponent(win)}`, { cache: "no-store" });
      if (resp.status === 401 || resp.status === 403) {
        status("error", "the admin key is needed (LYNKR_ADMIN_KEY): reload and sign in");
        return;
      }
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const data = await resp.json();
      if (!data.totals) {
        status("error", "routing telemetry is off (TELEMETRY_ENABLED=false): nothing to chart");
      } else {
        render(data);
        status("live", "updated " + new Date().toLocaleTimeString("en-GB"));
      }
    } catch (err) {
      status("error", "cannot reach lynkr: " + err.message);
    }
    timer = setTimeout(poll, POLL_MS);
  }

  function selectWindow(value) {
    win = value;
    for (const b of document.querySelectorAll("#windows button")) b.classList.toggle("active", b.dataset.window === value);
    const url = new URL(location.href);
    url.searchParams.set("window", value);
    history.replaceState(null, "", url);
    poll();
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const b of document.querySelectorAll("#windows button")) b.addEventListener("click", () => selectWindow(b.dataset.window));
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => last && charts(last), 150);
    });
    selectWindow(win);
  });
})();
