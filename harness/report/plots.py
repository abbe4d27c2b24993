"""Inline SVG plots for the report: no scripts, no fonts, no network, every label escaped.

Each function takes finished numbers and returns markup; the report template only places it.
"""

from __future__ import annotations

from markupsafe import Markup, escape

W = 640
INK, MUTED, GOOD, BAD, BASE = "#1d2330", "#6b7488", "#3b7d4f", "#c0533f", "#9aa5b8"


def _svg(height: int, body: list[str], label: str, width: int = W) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-size="11" '
        f'font-family="sans-serif">{"".join(body)}</svg>'
    )


def _text(x, y, s, anchor="start", color=INK) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{color}">{escape(str(s))}</text>'


def _points(xy) -> str:
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in xy)


def _polyline(color: str, points: str) -> str:
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>'


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def metric_with_ci(rows: list[dict], metric: str) -> Markup:
    """One dot per candidate/baseline at its value, with the 95% interval (baseline + CI of the gain)."""
    pts = [r for r in rows if r.get("primary") is not None]
    if not pts:
        return Markup("")
    vals = [v for r in pts for v in (r["primary"], *(r.get("interval") or ()))]
    lo, hi = min(vals), max(vals)
    pad = (hi - lo) * 0.1 or 0.01
    x = _scale(lo - pad, hi + pad, 190, W - 20)
    body = [
        _text(190, 12, f"{lo - pad:.3f}", color=MUTED),
        _text(W - 20, 12, f"{hi + pad:.3f}", "end", MUTED),
    ]
    for i, r in enumerate(pts):
        y = 30 + i * 24
        color = (
            BASE
            if r["baseline"]
            else GOOD
            if r.get("verdict") == "better"
            else BAD
            if r.get("verdict") == "worse"
            else INK
        )
        body.append(_text(0, y + 4, r["name"]))
        if r.get("interval"):
            a, b = r["interval"]
            body.append(
                f'<line x1="{x(a):.1f}" x2="{x(b):.1f}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="2"/>'
            )
            body += [
                f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{y - 5}" y2="{y + 5}" stroke="{color}"/>'
                for v in (a, b)
            ]
        cx = x(r["primary"])
        body.append(f'<circle cx="{cx:.1f}" cy="{y}" r="4" fill="{color}"/>')
        body.append(_text(x(r["primary"]), y - 7, f"{r['primary']:.4f}", "middle", MUTED))
    return _svg(40 + 24 * len(pts), body, f"{metric} with 95% intervals")


def query_outcomes(rows: list[dict]) -> Markup:
    """Per candidate, a bar split into queries that got better, stayed the same, got worse."""
    rows = [r for r in rows if r.get("outcomes")]
    if not rows:
        return Markup("")
    body = []
    for i, r in enumerate(rows):
        y, o = 10 + i * 28, r["outcomes"]
        total = max(1, o["improved"] + o["unchanged"] + o["worsened"])
        x = 190.0
        body.append(_text(0, y + 13, r["name"]))
        for key, color in (("improved", GOOD), ("unchanged", BASE), ("worsened", BAD)):
            w = (W - 200) * o[key] / total
            body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="18" fill="{color}"/>')
            if w > 24:
                body.append(_text(x + w / 2, y + 13, o[key], "middle", "#fff"))
            x += w
    body.append(
        _text(190, 20 + 28 * len(rows), "queries better / unchanged / worse than the baseline", color=MUTED)
    )
    return _svg(30 + 28 * len(rows), body, "per-query outcome against the baseline")


def training_curves(rows: list[dict], metric: str) -> Markup:
    """Training loss (left axis) and the dev metric (right axis) over steps, one panel per candidate."""
    panels = []
    for r in rows:
        hist = (r.get("training") or {}).get("history") or []
        loss = [(h["step"], h["loss"]) for h in hist if h.get("loss") is not None and "step" in h]
        dev = [
            (h["step"], h[f"dev_{metric}"])
            for h in hist
            if h.get(f"dev_{metric}") is not None and "step" in h
        ]
        if not loss:
            continue
        steps = [s for s, _ in loss + dev]
        x = _scale(min(steps), max(steps), 50, W - 60)
        yl = _scale(min(v for _, v in loss), max(v for _, v in loss), 150, 20)
        body = [
            _text(0, 12, r["name"]),
            _text(50, 168, f"step {min(steps)}", color=MUTED),
            _text(W - 60, 168, f"step {max(steps)}", "end", MUTED),
            _text(46, 24, f"{max(v for _, v in loss):.3f}", "end", MUTED),
            _text(46, 150, f"{min(v for _, v in loss):.3f}", "end", MUTED),
            _polyline(BAD, _points((x(s), yl(v)) for s, v in loss)),
            _text(W / 2 - 8, 168, "training loss", "end", BAD),
        ]  # legends under the plot, clear of the points
        if dev:
            yd = _scale(min(v for _, v in dev) - 0.01, max(v for _, v in dev) + 0.01, 150, 20)
            body.append(_polyline(GOOD, _points((x(s), yd(v)) for s, v in dev)))
            body += [
                f'<circle cx="{x(s):.1f}" cy="{yd(v):.1f}" r="3" fill="{GOOD}">'
                f"<title>step {s}: dev {escape(metric)} {v:.4f}</title></circle>"
                for s, v in dev
            ]
            # values on the first and last evaluation and on the one kept; every point has its tooltip
            kept = _kept_step(r, hist)
            body += [
                f'<circle cx="{x(s):.1f}" cy="{yd(v):.1f}" r="7" fill="none" stroke="{INK}"><title>kept: '
                f"{escape(metric)} {v:.4f} at step {s}</title></circle>"
                for s, v in dev
                if s == kept
            ]
            body += [
                _text(x(s), yd(v) - 9, f"{'kept ' if s == kept else ''}{v:.3f}", "middle", GOOD)
                for i, (s, v) in enumerate(dev)
                if s == kept or i in (0, len(dev) - 1)
            ]
            body.append(_text(W / 2 + 8, 168, f"dev {metric}", color=GOOD))
        panels.append(_svg(175, body, f"training loss and dev {metric} of {r['name']}", W))
    return Markup("".join(panels))


def _kept_step(row: dict, hist: list[dict]) -> int | None:
    """The step of the dev evaluation whose checkpoint was kept (training.chosen_epoch), if any."""
    chosen = (row.get("training") or {}).get("chosen_epoch")
    steps = [h["step"] for h in hist if chosen is not None and h.get("epoch") == chosen and "step" in h]
    return steps[-1] if steps else None


def frontier(points: list[tuple[float, float]]) -> list[int]:
    """The indices of the (docs/s, quality) points no other point beats on both, fastest first: the
    fastest way to each level of quality."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    out, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            out.append(i)
            best = points[i][1]
    return out


#: the colour of each kind of point in the quality-speed plot
KIND_COLORS = {
    "baseline": BASE,
    "transformer": GOOD,
    "student": "#7a5fb0",
    "static": "#c08a1f",
    "hybrid": "#2f6fa7",
    "bm25": "#8a6d3b",
}


def speed_points(rows: list[dict], references: list[dict], metric: str) -> list[dict]:
    """Every way the report measured to rank the test corpus, as ``{label, kind, shipped, docs_per_s,
    quality, mb}``: each export variant of each candidate and baseline; each hybrid row (its dense
    model and BM25 both read every document: ``1 / (1/dense + 1/bm25)`` docs/s); each BM25 reference
    (building its index)."""
    bm25 = {r["name"]: r for r in references if r.get("type") == "bm25" and r.get("docs_per_s")}
    dense = {r["name"]: r for r in rows}
    pts = []
    for r in rows:
        if r.get("hybrid_of"):
            d, b = dense.get(r["hybrid_of"]["dense"]), bm25.get(r["hybrid_of"].get("of"))
            speed = d and (d.get("metrics") or {}).get("docs_per_s")
            if speed and b and r["metrics"].get(metric) is not None:
                pts.append(
                    {
                        "label": f"{r['name']} [hybrid]",
                        "kind": "hybrid",
                        "shipped": False,
                        "docs_per_s": 1 / (1 / speed + 1 / b["docs_per_s"]),
                        "quality": r["metrics"][metric],
                        "mb": (d.get("metrics") or {}).get("model_mb") or 1,
                    }
                )
            continue
        kind = "baseline" if r["baseline"] else r.get("kind", "transformer")
        variants = r.get("variants") or [{"variant": None, "metrics": r["metrics"], "shipped": True}]
        for v in variants:
            m = v.get("metrics") or {}
            if m.get(metric) is not None and m.get("docs_per_s"):
                tag = [v["variant"]] if v["variant"] and len(variants) > 1 else []
                tag += [r["kind"]] if r.get("kind") in ("student", "static") else []
                pts.append(
                    {
                        "label": r["name"] + (f" [{', '.join(tag)}]" if tag else ""),
                        "kind": kind,
                        "shipped": v.get("shipped"),
                        "docs_per_s": m["docs_per_s"],
                        "quality": m[metric],
                        "mb": m.get("model_mb") or 1,
                    }
                )
    for b in bm25.values():
        if b["metrics"].get(metric) is not None:
            pts.append(
                {
                    "label": f"{b['name']} [BM25 index]",
                    "kind": "bm25",
                    "shipped": False,
                    "docs_per_s": b["docs_per_s"],
                    "quality": b["metrics"][metric],
                    "mb": 1,
                }
            )
    return pts


def quality_vs_speed(rows: list[dict], metric: str, references: list[dict] = ()) -> Markup:
    """Primary metric against encoding throughput (docs/s, log scale): one dot per export variant of
    each candidate and baseline, per hybrid row and per BM25 reference (:func:`speed_points`),
    coloured by kind; the dot's area grows with the model's MB, a ring marks a shipped variant, a
    dashed line joins the frontier (the fastest way to each quality)."""
    import math

    pts = speed_points(rows, list(references), metric)
    if not pts:
        return Markup("")
    lo, hi = min(p["docs_per_s"] for p in pts) / 1.3, max(p["docs_per_s"] for p in pts) * 1.3
    logx = _scale(math.log10(lo), math.log10(hi), 60, W - 170)

    def x(v):
        return logx(math.log10(v))

    q = [p["quality"] for p in pts]
    y = _scale(min(q) - 0.01, max(q) + 0.01, 200, 20)
    height = 250 + 14 * len(pts)
    body = [
        f'<line x1="60" x2="{W - 170}" y1="210" y2="210" stroke="{MUTED}"/>',
        f'<line x1="60" x2="60" y1="15" y2="210" stroke="{MUTED}"/>',
        _text(W - 170, 240, "docs/s, log scale (test corpus, this machine) →", "end", MUTED),
        _text(0, 14, f"{metric} ↑", color=MUTED),
        _text(56, y(max(q)) + 4, f"{max(q):.3f}", "end", MUTED),
        _text(56, y(min(q)) + 4, f"{min(q):.3f}", "end", MUTED),
    ]
    for e in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1):
        body.append(f'<line x1="{x(10**e):.1f}" x2="{x(10**e):.1f}" y1="210" y2="214" stroke="{MUTED}"/>')
        body.append(_text(x(10**e), 226, f"{10**e:g}", "middle", MUTED))
    edge = frontier([(p["docs_per_s"], p["quality"]) for p in pts])
    if edge:  # one point alone is the frontier too: fastest and best at once
        body.append(
            f'<polyline id="frontier" fill="none" stroke="{MUTED}" stroke-dasharray="4 3" points="'
            f'{_points((x(pts[i]["docs_per_s"]), y(pts[i]["quality"])) for i in edge)}">'
            "<title>frontier: the fastest way to each quality</title></polyline>"
        )
    on_edge = set(edge)
    for n, p in enumerate(pts):
        cx, cy = x(p["docs_per_s"]), y(p["quality"])
        radius = min(14, 3 + p["mb"] ** 0.5 / 2)
        tip = f"{escape(p['label'])}: {escape(metric)} {p['quality']:.4f}, {p['docs_per_s']:.1f} docs/s"
        body.append(
            f'<circle class="point kind-{p["kind"]}" cx="{cx:.1f}" cy="{cy:.1f}" r="{radius:.1f}" '
            f'fill="{KIND_COLORS[p["kind"]]}" fill-opacity="0.7"><title>{tip}</title></circle>'
        )
        if p["shipped"] and p["kind"] != "baseline":
            body.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius + 3:.1f}" fill="none" stroke="{INK}"/>'
            )
        body.append(_text(cx + radius + 2, cy + 4, str(n + 1), color=MUTED))
        mark = " · on the frontier" if n in on_edge else ""
        body.append(
            _text(
                60,
                258 + 14 * n,
                f"{n + 1}. {p['label']}: {metric} {p['quality']:.4f}, {p['docs_per_s']:.0f} docs/s, "
                f"{p['mb']:.0f} MB{mark}",
                color=KIND_COLORS[p["kind"]] if p["kind"] != "baseline" else MUTED,
            )
        )
    return _svg(
        height, body, f"{metric} against encoding throughput, every model and variant, BM25 and hybrids"
    )


def history(points: list[dict], metric: str) -> Markup:
    """The shipped candidate's primary metric across the suite's runs, oldest first."""
    pts = [p for p in points if p.get("value") is not None]
    if len(pts) < 2:
        return Markup("")
    x = _scale(0, len(pts) - 1, 60, W - 60)
    vals = [p["value"] for p in pts]
    y = _scale(min(vals) - 0.01, max(vals) + 0.01, 120, 20)
    body = [
        f'<polyline fill="none" stroke="{INK}" points="{_points((x(i), y(v)) for i, v in enumerate(vals))}"/>'
    ]
    for i, p in enumerate(pts):
        color = GOOD if p["current"] else INK
        body.append(f'<circle cx="{x(i):.1f}" cy="{y(p["value"]):.1f}" r="3.5" fill="{color}"/>')
        body.append(_text(x(i), y(p["value"]) - 7, f"{p['value']:.4f}", "middle", MUTED))
        body.append(_text(x(i), 140, p["run_id"][-6:], "middle", MUTED))
    return _svg(150, body, f"{metric} of the shipped candidate across runs")
