// Markdown tables and SVG charts, drawn here with no dependency, for the bench reports.

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** A Markdown table; `align` per column: 'l' or 'r' (default 'l'). Cells are escaped for pipes. */
export function markdownTable(
  headers: string[],
  rows: (string | number)[][],
  align: ('l' | 'r')[] = [],
): string[] {
  const cell = (v: string | number) => String(v).replaceAll('|', '\\|').replaceAll('\n', ' ');
  return [
    `| ${headers.map(cell).join(' | ')} |`,
    `| ${headers.map((_, i) => (align[i] === 'r' ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
}

export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );
}

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12"';
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#9c755f'];

export interface Bar {
  label: string;
  value: number;
  /** Shown after the value, e.g. "0.91× ceiling". */
  note?: string;
  /** Bars of one group share a colour (e.g. one framework and its ceiling). */
  group?: string;
}

/** A horizontal bar chart: one bar per entry, scaled to the largest value. */
export function barChart(title: string, unit: string, bars: Bar[]): string {
  const labelW = 430;
  const barW = 360;
  const noteW = 220;
  const rowH = 22;
  const top = 34;
  const width = labelW + barW + noteW;
  const height = top + bars.length * rowH + 12;
  const max = Math.max(1e-9, ...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)));
  const groups = [...new Set(bars.map((b) => b.group ?? ''))];
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(title)}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="8" y="20" ${FONT} font-weight="bold">${escapeXml(title)} (${escapeXml(unit)})</text>`,
  ];
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const v = Number.isFinite(b.value) ? Math.max(0, b.value) : 0;
    const w = Math.max(1, Math.round((v / max) * barW));
    const colour = PALETTE[groups.indexOf(b.group ?? '') % PALETTE.length];
    const label = b.label.length > 68 ? `${b.label.slice(0, 67)}…` : b.label;
    out.push(
      `<text x="${labelW - 6}" y="${y + 15}" ${FONT} text-anchor="end">${escapeXml(label)}</text>`,
      `<rect x="${labelW}" y="${y + 3}" width="${w}" height="${rowH - 6}" fill="${colour}"/>`,
      `<text x="${labelW + w + 6}" y="${y + 15}" ${FONT}>${escapeXml(fmt(b.value))}${b.note ? ` · ${escapeXml(b.note)}` : ''}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

/** A line chart with a log-10 x axis (session counts) and a linear y axis from 0. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const width = 700;
  const height = 320;
  const left = 64;
  const right = 200;
  const top = 34;
  const bottom = 44;
  const pts = series
    .flatMap((s) => s.points)
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && p.x > 0);
  const xs = pts.map((p) => Math.log10(p.x));
  const x0 = Math.floor(Math.min(...xs, 3));
  const x1 = Math.max(x0 + 1, Math.ceil(Math.max(...xs, 3)));
  const yMax = Math.max(1e-9, ...pts.map((p) => p.y)) * 1.1;
  const px = (x: number) => left + ((Math.log10(x) - x0) / (x1 - x0)) * (width - left - right);
  const py = (y: number) => height - bottom - (y / yMax) * (height - top - bottom);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(title)}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="8" y="20" ${FONT} font-weight="bold">${escapeXml(title)}</text>`,
    `<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#333"/>`,
    `<text x="${(left + width - right) / 2}" y="${height - 8}" ${FONT} text-anchor="middle">${escapeXml(xLabel)}</text>`,
    `<text x="14" y="${(top + height - bottom) / 2}" ${FONT} text-anchor="middle" transform="rotate(-90 14 ${(top + height - bottom) / 2})">${escapeXml(yLabel)}</text>`,
  ];
  for (let e = x0; e <= x1; e++) {
    const x = px(10 ** e);
    out.push(
      `<line x1="${x}" y1="${height - bottom}" x2="${x}" y2="${height - bottom + 4}" stroke="#333"/>`,
      `<text x="${x}" y="${height - bottom + 16}" ${FONT} text-anchor="middle">${escapeXml(fmt(10 ** e))}</text>`,
    );
  }
  for (let k = 0; k <= 4; k++) {
    const v = (yMax / 1.1) * (k / 4);
    out.push(
      `<line x1="${left - 4}" y1="${py(v)}" x2="${left}" y2="${py(v)}" stroke="#333"/>`,
      `<text x="${left - 6}" y="${py(v) + 4}" ${FONT} text-anchor="end">${escapeXml(fmt(v, v < 10 ? 1 : 0))}</text>`,
    );
  }
  series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const ok = s.points.filter((p) => Number.isFinite(p.y) && p.x > 0);
    if (ok.length > 0)
      out.push(
        `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${ok.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}"/>`,
        ...ok.map(
          (p) => `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="${colour}"/>`,
        ),
      );
    out.push(
      `<rect x="${width - right + 12}" y="${top + i * 18}" width="10" height="10" fill="${colour}"/>`,
      `<text x="${width - right + 26}" y="${top + i * 18 + 9}" ${FONT}>${escapeXml(s.name)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
