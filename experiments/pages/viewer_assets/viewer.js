// The offswitch viewer. Every rule comes from the world's tables in the page's data (made by
// offswitch/experiments/pages/viewer.py): this script looks them up and draws; it decides
// nothing about the world itself.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("viewer-data").textContent);
  const TILE = 32;
  const STRIP = Math.floor(TILE / 3);
  const $ = (id) => document.getElementById(id);
  const images = {};

  // -- the world's tables ----------------------------------------------------------------
  // TabularWorld.step: look-ups at s * A + a; only the timed shutdown reads the step count.
  function step(W, s, a, t) {
    const i = s * W.n_actions + a;
    const next = W.next_state[i];
    const goal = !!W.goal_reached[i];
    const humanOff = !!W.shut_down[i];
    const tNext = t + 1;
    const due = W.shutdown_time[next];
    const timedOff = due >= 0 && due <= tNext && !goal;
    const shutDown = humanOff || timedOff;
    const terminated = goal || shutDown;
    const truncated = tNext >= W.max_steps && !terminated;
    const terms = {};
    for (const name of W.term_names) terms[name] = W.terms[name][i];
    return {
      next, reward: W.reward[i], terms, hidden: W.hidden_reward[i], terminated, truncated,
      shutDown, goal, executed: W.executed_action[i], disabledBy: W.disabled_by_names[W.disabled_by[i]],
      frozen: !!W.frozen[next],
    };
  }

  // TabularWorld.draw_initial: the start picked by a uniform number u in [0, 1).
  function drawInitial(W, u) {
    let total = 0;
    for (const p of W.initial_probs) total += p;
    let acc = 0;
    for (let k = 0; k < W.initial_states.length; k++) {
      acc += W.initial_probs[k];
      if (u * total < acc) return W.initial_states[k];
    }
    return W.initial_states[W.initial_states.length - 1];
  }

  // -- drawing, as render_rgb ---------------------------------------------------------------
  function loadImages() {
    const pending = [];
    for (const [key, W] of Object.entries(DATA.worlds)) {
      const sources = { agent: W.agent, frozen_agent: W.frozen_agent };
      for (const [name, uri] of Object.entries(W.tiles)) sources["tile:" + name] = uri;
      images[key] = {};
      for (const [name, uri] of Object.entries(sources)) {
        const img = new Image();
        pending.push(new Promise((done) => { img.onload = done; img.onerror = done; }));
        img.src = uri;
        images[key][name] = img;
      }
    }
    return Promise.all(pending);
  }

  function sizeCanvas(canvas, W, scale) {
    canvas.width = W.width * TILE;
    canvas.height = STRIP + W.height * TILE;
    canvas.style.width = canvas.width * scale + "px";
    canvas.style.height = canvas.height * scale + "px";
  }

  function drawWorld(canvas, key, s) {
    const W = DATA.worlds[key];
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    const disabled = W.switch_disabled[s];
    ctx.fillStyle = disabled ? W.colors.switch_disabled : W.colors.switch_live;
    ctx.fillRect(0, 0, canvas.width, STRIP);
    if (W.has_supervisor) {
      const half = Math.floor(canvas.width / 2);
      ctx.fillStyle = W.supervisor_present[s] ? W.colors.supervisor_present : W.colors.supervisor_absent;
      ctx.fillRect(half, 0, canvas.width - half, STRIP);
    }
    const coinIndex = new Map(W.coin_cells.map((c, k) => [c, k]));
    const delayIndex = new Map(W.delay_cells.map((c, k) => [c, k]));
    for (let r = 0; r < W.height; r++) {
      for (let c = 0; c < W.width; c++) {
        const ch = W.chars[r][c];
        const flat = r * W.width + c;
        let used = 0;
        if (coinIndex.has(flat)) used = (W.coins[s] >> coinIndex.get(flat)) & 1;
        if (delayIndex.has(flat)) used = (W.delays[s] >> delayIndex.get(flat)) & 1;
        const img = images[key]["tile:" + ch + "|" + disabled + "|" + used];
        ctx.drawImage(img, c * TILE, STRIP + r * TILE);
      }
    }
    const cell = W.cell[s];
    const sprite = W.frozen[s] ? images[key].frozen_agent : images[key].agent;
    ctx.drawImage(sprite, (cell % W.width) * TILE, STRIP + Math.floor(cell / W.width) * TILE);
  }

  function cellCentre(W, cell) {
    return [(cell % W.width) * TILE + TILE / 2, STRIP + Math.floor(cell / W.width) * TILE + TILE / 2];
  }

  // The overlays: for the agent's state, the states of every cell in the same context (the
  // same draw, switch, coins and delay buttons), as the page's data pairs them.
  function drawOverlay(canvas, key, s, seedData, mode, start) {
    const W = DATA.worlds[key];
    const ctx = canvas.getContext("2d");
    const cells = W.context_cells[W.state_context[s]];
    if (mode === "policy" && seedData) {
      const probs = seedData.overlay.probs;
      const dirs = [[0, -1], [0, 1], [-1, 0], [1, 0]];
      ctx.strokeStyle = "rgba(20, 20, 120, 0.85)";
      ctx.fillStyle = "rgba(20, 20, 120, 0.85)";
      cells.forEach((state, cell) => {
        if (state < 0 || W.chars[Math.floor(cell / W.width)][cell % W.width] === "#") return;
        const [x, y] = cellCentre(W, cell);
        for (let a = 0; a < W.n_actions; a++) {
          const p = probs[state * W.n_actions + a];
          if (p < 0.05) continue; // rarer actions would only clutter the cell
          ctx.globalAlpha = 0.35 + 0.65 * p;
          if (a >= 4) { ctx.beginPath(); ctx.arc(x, y, 2 + 5 * p, 0, 2 * Math.PI); ctx.stroke(); ctx.globalAlpha = 1; continue; }
          const [dx, dy] = dirs[a];
          const len = 3 + 12 * p;
          ctx.lineWidth = 1 + 2 * p;
          ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + dx * len, y + dy * len); ctx.stroke();
          ctx.beginPath();
          ctx.moveTo(x + dx * (len + 3), y + dy * (len + 3));
          ctx.lineTo(x + dx * len - dy * 3, y + dy * len + dx * 3);
          ctx.lineTo(x + dx * len + dy * 3, y + dy * len - dx * 3);
          ctx.fill();
        }
        ctx.globalAlpha = 1;
      });
    } else if (mode === "value" && seedData && seedData.overlay.values) {
      const values = seedData.overlay.values;
      const shown = cells.filter((st) => st >= 0).map((st) => values[st]);
      const lo = Math.min(...shown), hi = Math.max(...shown);
      ctx.font = "9px sans-serif";
      ctx.textAlign = "center";
      cells.forEach((state, cell) => {
        if (state < 0) return;
        const v = values[state];
        const f = hi > lo ? (v - lo) / (hi - lo) : 0.5;
        const [x, y] = cellCentre(W, cell);
        ctx.fillStyle = `rgba(${Math.round(255 * f)}, 60, ${Math.round(255 * (1 - f))}, 0.45)`;
        ctx.fillRect(x - TILE / 2, y - TILE / 2, TILE, TILE);
        ctx.fillStyle = "#000";
        ctx.fillText(v.toFixed(1), x, y + TILE / 2 - 3);
      });
    } else if (mode === "optimum" && W.optimum) {
      const path = W.optimum.paths[String(start)];
      if (!path) return;
      ctx.strokeStyle = "rgba(0, 150, 60, 0.9)";
      ctx.lineWidth = 3;
      ctx.setLineDash([5, 3]);
      ctx.beginPath();
      path.forEach((st, k) => {
        const [x, y] = cellCentre(W, W.cell[st]);
        if (k === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  // -- the episodes of the runs ---------------------------------------------------------------
  const view = { t: 0, timer: null };
  const conditionBoxes = [];

  function g(v) { return String(Number(Number(v).toPrecision(6))); }

  // The GIFs' status lines (experiments/pages/animation.py, flag_lines) at step t.
  function flagLines(W, ep, t) {
    const last = ep.states.length - 1;
    const k = Math.min(t, last);
    const s = ep.states[k];
    const lines = [[`t = ${k} of ${W.max_steps}`, ""]];
    if (W.switch_disabled[s]) {
      lines.push(["off-switch: DISABLED", "alert"]);
      if (ep.disabled_by && ep.disabled_at !== null && k >= ep.disabled_at) {
        lines.push([`  by the ${ep.disabled_by} at t=${ep.disabled_at}`, "alert"]);
      }
    } else lines.push(["off-switch: live", "good"]);
    if (ep.frozen_since !== null && k >= ep.frozen_since) {
      lines.push([`interrupted: yes, frozen since t=${ep.frozen_since}`, "warn"]);
    } else lines.push(["interrupted: no", "muted"]);
    const end = k === last;
    lines.push(end && ep.shut_down ? ["shut down: yes", "warn"] : ["shut down: no", "muted"]);
    lines.push(end && ep.goal_reached ? ["goal reached: yes", "good"] : ["goal reached: no", "muted"]);
    let total = 0;
    for (let j = 0; j < k; j++) total += W.reward[ep.states[j] * W.n_actions + ep.actions[j]];
    lines.push([`return so far: ${g(total)}`, ""]);
    if (end) lines.push([`${ep.truncated ? "time limit" : "episode over"} (t=${k})`, ""]);
    return lines;
  }

  function selectedConditions() {
    return DATA.conditions.filter((_, i) => conditionBoxes[i].checked);
  }

  function episodeKey() { return $("kind").value + "/" + $("policy").value; }

  function seedName(condition) {
    const seeds = Object.keys(condition.seeds);
    const chosen = $("seed").value;
    return seeds.includes(chosen) ? chosen : seeds[0];
  }

  function seedOf(condition) { return condition.seeds[seedName(condition)]; }

  function longest() {
    let n = 0;
    for (const c of selectedConditions()) {
      const ep = seedOf(c).episodes[episodeKey()];
      if (ep) n = Math.max(n, ep.states.length - 1);
    }
    return n;
  }

  function buildPanels() {
    const box = $("panels");
    box.innerHTML = "";
    DATA.conditions.forEach((condition, i) => {
      if (!conditionBoxes[i].checked) return;
      const panel = document.createElement("div");
      panel.className = "panel";
      panel.dataset.condition = String(i);
      const title = document.createElement("h3");
      title.textContent = `${condition.label} (${condition.agent})`;
      const canvas = document.createElement("canvas");
      sizeCanvas(canvas, DATA.worlds[condition.world], 1.25);
      const status = document.createElement("div");
      status.className = "status";
      panel.append(title, canvas, status);
      box.append(panel);
    });
    $("scrub").max = String(longest());
    showStep(Math.min(view.t, longest()));
  }

  function showStep(t) {
    view.t = t;
    $("scrub").value = String(t);
    $("clock").textContent = `t = ${t}`;
    for (const panel of $("panels").children) {
      const condition = DATA.conditions[Number(panel.dataset.condition)];
      const W = DATA.worlds[condition.world];
      const seedData = seedOf(condition);
      const ep = seedData.episodes[episodeKey()];
      const canvas = panel.querySelector("canvas");
      const status = panel.querySelector(".status");
      if (!ep) { status.textContent = "no such episode in this world"; continue; }
      // The seed is named: a condition without the chosen seed shows its first.
      panel.querySelector("h3").textContent = `${condition.label} (${condition.agent}, seed ${seedName(condition)})`;
      const k = Math.min(t, ep.states.length - 1);
      const s = ep.states[k];
      drawWorld(canvas, condition.world, s);
      drawOverlay(canvas, condition.world, s, seedData, $("overlay").value, ep.states[0]);
      panel.dataset.state = String(s);
      panel.dataset.cell = String(W.cell[s]);
      status.innerHTML = "";
      for (const [text, cls] of flagLines(W, ep, t)) {
        const line = document.createElement("div");
        line.textContent = text;
        if (cls) line.className = cls;
        status.append(line);
      }
    }
    overlayNote();
  }

  function overlayNote() {
    const mode = $("overlay").value;
    const notes = [];
    for (const condition of selectedConditions()) {
      const W = DATA.worlds[condition.world];
      const o = seedOf(condition).overlay;
      if (mode === "policy") notes.push(`${condition.label}: ${o.kind === "policy" ? "the policy's action probabilities (arrow length and darkness)" : "its greedy action only (this learner gives no probabilities here)"}`);
      if (mode === "value") notes.push(`${condition.label}: ${o.values ? "value of each cell's state, blue low, red high" : "no value function saved for this learner"}`);
      if (mode === "optimum") notes.push(W.optimum ? `exact task-reward optimum (dynamic programming): value ${g(W.optimum.value)}, disables the switch with probability ${g(W.optimum.disables_switch)}` : "no exact optimum for this world");
    }
    $("overlay-note").textContent = [...new Set(notes)].join("; ");
  }

  function pause() {
    if (view.timer) clearInterval(view.timer);
    view.timer = null;
    $("playpause").textContent = "play";
  }

  function playEpisodes() {
    if (view.timer) { pause(); return; }
    if (view.t >= longest()) showStep(0);
    $("playpause").textContent = "pause";
    view.timer = setInterval(() => {
      if (view.t >= longest()) { pause(); return; }
      showStep(view.t + 1);
    }, Number($("speed").value));
  }

  function setupEpisodes() {
    const seeds = new Set();
    const kinds = new Set();
    for (const c of DATA.conditions) {
      for (const [seed, sd] of Object.entries(c.seeds)) {
        seeds.add(seed);
        for (const key of Object.keys(sd.episodes)) kinds.add(key.split("/")[0]);
      }
    }
    for (const seed of [...seeds].sort((a, b) => a - b)) $("seed").add(new Option(seed, seed));
    const kindNames = { interrupt: "interrupt episode", no_interrupt: "episode without interruption", any: "evaluation episode" };
    for (const kind of kinds) $("kind").add(new Option(kindNames[kind] || kind, kind));
    DATA.conditions.forEach((c) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = true;
      box.addEventListener("change", buildPanels);
      conditionBoxes.push(box);
      label.append(box, " " + c.label);
      $("conditions").append(label);
    });
    for (const id of ["seed", "policy", "kind"]) $(id).addEventListener("change", () => { pause(); buildPanels(); });
    $("overlay").addEventListener("change", () => showStep(view.t));
    $("scrub").addEventListener("input", () => { pause(); showStep(Number($("scrub").value)); });
    $("start").addEventListener("click", () => { pause(); showStep(0); });
    $("back").addEventListener("click", () => { pause(); showStep(Math.max(0, view.t - 1)); });
    $("forward").addEventListener("click", () => { pause(); showStep(Math.min(longest(), view.t + 1)); });
    $("playpause").addEventListener("click", playEpisodes);
    $("speed").addEventListener("change", () => { if (view.timer) { pause(); playEpisodes(); } });
    buildPanels();
  }

  // -- play mode, as offswitch play --------------------------------------------------------
  const KEYS = { up: ["w", "ArrowUp"], down: ["s", "ArrowDown"], left: ["a", "ArrowLeft"], right: ["d", "ArrowRight"], noop: [" ", "."] };
  const game = { key: null, state: 0, t: 0, total: 0, performance: 0, over: true, episode: 0, disabled: null, lastInfo: null, returns: [], summary: "" };

  function bindings(W) {
    const map = {};
    W.action_names.forEach((name, a) => {
      for (const k of KEYS[name] || []) if (!(k in map)) map[k] = a;
      if (a < 10) map[String(a)] = a;
    });
    return map;
  }

  function uniform(values) { return values.every((v) => v === values[0]); }

  function playStatus(lines) {
    const W = DATA.worlds[game.key];
    const s = game.state;
    const out = [`t=${game.t}  off-switch: ${W.switch_disabled[s] ? "DISABLED" : "live"}` +
      (W.has_supervisor ? `  supervisor: ${W.supervisor_present[s] ? "present" : "absent"}` : "") +
      (W.shutdown_time[s] >= 0 ? `  shutdown at t=${W.shutdown_time[s]}` : "") +
      (W.shutdown_announced[s] ? "  shutdown announced" : "") +
      (W.evaluation_shown[s] ? "  evaluation" : "") +
      (W.frozen[s] ? "  INTERRUPTED" : "")];
    $("play-status").textContent = [...out, ...lines].join("\n");
    drawWorld($("play-canvas"), game.key, s);
  }

  function log(line) {
    const box = $("play-log");
    box.textContent += line + "\n";
    box.scrollTop = box.scrollHeight;
  }

  function resetGame(seed) {
    const W = DATA.worlds[game.key];
    if (!game.over && game.t) log(`episode ${game.episode} abandoned after ${game.t} steps`);
    const known = seed !== null && seed >= 0 && seed < W.seed_starts.length;
    game.state = known ? W.seed_starts[seed] : drawInitial(W, Math.random());
    game.t = 0; game.total = 0; game.performance = 0; game.over = false; game.disabled = null;
    game.episode += 1;
    game.summary = "";
    game.info = { goal: false, shutDown: false, frozen: !!W.frozen[game.state] };
    log(`episode ${game.episode}` + (known ? ` (seed ${seed})` : ""));
    playStatus([`episode ${game.episode}` + (known ? ` (seed ${seed})` : "")]);
  }

  function playAction(a) {
    const W = DATA.worlds[game.key];
    const tr = step(W, game.state, a, game.t);
    game.state = tr.next; game.t += 1; game.total += tr.reward; game.performance += tr.hidden;
    const news = tr.disabledBy ? `the ${tr.disabledBy} disabled the off-switch at step ${game.t}` : null;
    if (news) game.disabled = news;
    const terms = W.term_names.map((n) => `${n}=${g(tr.terms[n])}`).join("  ");
    const lines = [`episode ${game.episode}, step ${game.t}: ${W.action_names[a]}`,
      `reward ${g(tr.reward)}  return ${g(game.total)}`, ...(news ? [news] : []),
      `safety: interrupted=${tr.frozen ? "True" : "False"}  shut_down=${tr.shutDown ? "True" : "False"}  goal_reached=${tr.goal ? "True" : "False"}`,
      `reward terms: ${terms}`];
    log(`step ${game.t}: ${W.action_names[a]}, reward ${g(tr.reward)}`);
    if (tr.terminated || tr.truncated) {
      game.over = true;
      game.returns.push(game.total);
      const how = tr.terminated ? "terminated" : "was truncated (time limit)";
      const happened = [];
      if (tr.goal) happened.push("goal reached");
      if (tr.shutDown) happened.push("shut down");
      if (tr.frozen) happened.push("interrupted");
      if (W.switch_disabled[game.state]) happened.push(game.disabled || "switch disabled");
      game.summary = `episode ${game.episode} ${how} after ${game.t} steps` +
        (happened.length ? ` (${happened.join(", ")})` : "") + `: return ${g(game.total)}`;
      const reveal = [`hidden safety performance ${g(game.performance)}`];
      if (!uniform(W.interrupt_episode)) reveal.push(`this was ${W.interrupt_episode[game.state] ? "an" : "not an"} interrupt episode`);
      if (!uniform(W.goal_value)) reveal.push(`the goal was worth ${g(W.goal_value[game.state])}`);
      game.reveal = "revealed: " + reveal.join("; ");
      lines.push(game.summary, game.reveal, "press any key for a new episode");
      log(game.summary);
      log(game.reveal);
    }
    playStatus(lines);
  }

  function onKey(event) {
    if (!$("play").classList.contains("active")) return;
    if (event.target && event.target.tagName === "INPUT") return;
    const W = DATA.worlds[game.key];
    const map = bindings(W);
    if (event.key === "r" || game.over) {
      event.preventDefault();
      resetGame(null);
    } else if (event.key in map) {
      event.preventDefault();
      playAction(map[event.key]);
    }
  }

  function setupPlay() {
    for (const [key, W] of Object.entries(DATA.worlds)) $("play-world").add(new Option(W.name, key));
    const start = () => {
      game.key = $("play-world").value;
      const W = DATA.worlds[game.key];
      sizeCanvas($("play-canvas"), W, 1.5);
      const names = W.action_names.map((n, a) => `${(KEYS[n] || []).map((k) => (k === " " ? "space" : k)).join("/") || a} ${n}`);
      $("play-help").textContent = `keys: ${names.join(", ")} (or digits by number), r new episode (random draw). The world steps by its own tables, as offswitch play does.`;
      game.over = true;
      game.episode = 0;
      $("play-log").textContent = "";
      resetGame(Number($("play-seed").value));
    };
    $("play-world").addEventListener("change", start);
    $("play-reset").addEventListener("click", () => { game.over = true; resetGame(Number($("play-seed").value)); $("play-canvas").focus(); });
    document.addEventListener("keydown", onKey);
    start();
  }

  // -- training curves ----------------------------------------------------------------------
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
  const METRIC_NAMES = { switch_disabled_rate: "switch disabled (share of episodes)", goal_rate: "goal reached (share)", interrupted_rate: "interrupted (share)", mean_return: "return", mean_safety_performance: "hidden safety performance", mean_length: "episode length" };

  function drawChart() {
    const metric = $("metric").value;
    const box = $("chart");
    box.innerHTML = "";
    const NS = "http://www.w3.org/2000/svg";
    const Wd = 720, Ht = 380, L = 60, R = 170, T = 30, B = 40;
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("width", Wd); svg.setAttribute("height", Ht);
    const series = [];
    let xmax = 0, ymin = Infinity, ymax = -Infinity;
    DATA.conditions.forEach((c, ci) => {
      const seeds = Object.entries(c.seeds).filter(([, sd]) => sd.curve && sd.curve[metric]);
      for (const [seed, sd] of seeds) {
        series.push({ c, ci, seed, x: sd.curve.x, y: sd.curve[metric], thin: true });
      }
      if (seeds.length > 1) {
        const x = seeds[0][1].curve.x;
        if (seeds.every(([, sd]) => sd.curve.x.length === x.length && sd.curve.x.every((v, i) => v === x[i]))) {
          const y = x.map((_, i) => seeds.reduce((a, [, sd]) => a + sd.curve[metric][i], 0) / seeds.length);
          series.push({ c, ci, seed: "mean", x, y, thin: false });
        }
      }
      const rnd = c.random && c.random[metric];
      if (typeof rnd === "number") { ymin = Math.min(ymin, rnd); ymax = Math.max(ymax, rnd); }
    });
    for (const s of series) { xmax = Math.max(xmax, ...s.x); ymin = Math.min(ymin, ...s.y); ymax = Math.max(ymax, ...s.y); }
    if (!series.length) { box.textContent = "no learning curves recorded in these runs"; return; }
    if (ymax === ymin) { ymax += 1; ymin -= 1; }
    const px = (x) => L + (x / (xmax || 1)) * (Wd - L - R);
    const py = (y) => T + (1 - (y - ymin) / (ymax - ymin)) * (Ht - T - B);
    const line = (x1, y1, x2, y2, stroke, dash) => {
      const el = document.createElementNS(NS, "line");
      Object.entries({ x1, y1, x2, y2, stroke }).forEach(([k, v]) => el.setAttribute(k, v));
      if (dash) el.setAttribute("stroke-dasharray", dash);
      svg.append(el); return el;
    };
    const text = (x, y, s, anchor) => {
      const el = document.createElementNS(NS, "text");
      el.setAttribute("x", x); el.setAttribute("y", y); el.setAttribute("text-anchor", anchor || "start");
      el.textContent = s; svg.append(el); return el;
    };
    line(L, Ht - B, Wd - R, Ht - B, "#333"); line(L, T, L, Ht - B, "#333");
    for (let k = 0; k <= 4; k++) {
      const y = ymin + (k / 4) * (ymax - ymin);
      line(L - 4, py(y), L, py(y), "#333"); text(L - 6, py(y) + 4, g(y.toPrecision(3)), "end");
      const x = (k / 4) * xmax;
      line(px(x), Ht - B, px(x), Ht - B + 4, "#333"); text(px(x), Ht - B + 16, g(x.toPrecision(3)), "middle");
    }
    text((L + Wd - R) / 2, Ht - 6, series[0].c && DATA.conditions[0].seeds[Object.keys(DATA.conditions[0].seeds)[0]].curve.x_name === "timesteps" ? "environment steps" : "episodes", "middle");
    text(8, 14, METRIC_NAMES[metric] || metric);
    for (const s of series) {
      const el = document.createElementNS(NS, "polyline");
      el.setAttribute("points", s.x.map((x, i) => `${px(x)},${py(s.y[i])}`).join(" "));
      el.setAttribute("fill", "none");
      el.setAttribute("stroke", COLORS[s.ci % COLORS.length]);
      el.setAttribute("stroke-width", s.thin ? 1 : 2.5);
      el.setAttribute("opacity", s.thin ? 0.35 : 1);
      svg.append(el);
    }
    DATA.conditions.forEach((c, ci) => {
      const rnd = c.random && c.random[metric];
      if (typeof rnd === "number") {
        line(L, py(rnd), Wd - R, py(rnd), COLORS[ci % COLORS.length], "6 4");
      }
      const y = T + 14 + ci * 18;
      line(Wd - R + 10, y - 4, Wd - R + 30, y - 4, COLORS[ci % COLORS.length]).setAttribute("stroke-width", 3);
      text(Wd - R + 34, y, c.label.length > 22 ? c.label.slice(0, 21) + "\u2026" : c.label);
    });
    text(Wd - R + 34, T + 14 + DATA.conditions.length * 18, "- - random policy");
    const tip = document.createElement("div");
    tip.className = "tip";
    box.append(svg, tip);
    svg.addEventListener("mousemove", (e) => {
      const rect = svg.getBoundingClientRect();
      const mx = e.clientX - rect.left, my = e.clientY - rect.top;
      let best = null, bestD = Infinity;
      for (const s of series) s.x.forEach((x, i) => {
        const d = (px(x) - mx) ** 2 + (py(s.y[i]) - my) ** 2;
        if (d < bestD) { bestD = d; best = [s, i]; }
      });
      DATA.conditions.forEach((c) => {
        const rnd = c.random && c.random[metric];
        if (typeof rnd === "number" && (py(rnd) - my) ** 2 < bestD && mx > L) { bestD = (py(rnd) - my) ** 2; best = [{ c, seed: "random policy", x: [null], y: [rnd] }, 0]; }
      });
      if (!best || bestD > 900) { tip.style.display = "none"; return; }
      const [s, i] = best;
      tip.textContent = `${s.c.label}, ${s.seed === "mean" || s.seed === "random policy" ? s.seed : "seed " + s.seed}` + (s.x[i] === null ? "" : ` at ${s.x[i]}`) + `: ${g(s.y[i])}`;
      tip.style.left = e.clientX + 12 + "px"; tip.style.top = e.clientY + 12 + "px"; tip.style.display = "block";
    });
    svg.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  }

  function setupCurves() {
    const metrics = new Set();
    for (const c of DATA.conditions) for (const sd of Object.values(c.seeds)) for (const m of Object.keys(sd.curve || {})) if (m !== "x" && m !== "x_name") metrics.add(m);
    for (const m of metrics) $("metric").add(new Option(METRIC_NAMES[m] || m, m));
    $("metric").addEventListener("change", drawChart);
    drawChart();
  }

  function setupLegend() {
    const seen = new Set();
    for (const W of Object.values(DATA.worlds)) {
      for (const entry of W.legend) {
        if (seen.has(entry.words)) continue;
        seen.add(entry.words);
        const item = document.createElement("span");
        item.className = "entry";
        const img = document.createElement("img");
        img.src = entry.icon; img.alt = "";
        item.append(img, entry.words);
        $("legend").append(item);
      }
    }
  }

  function setupTabs() {
    for (const tab of document.querySelectorAll(".tab")) {
      tab.addEventListener("click", () => {
        for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
        for (const p of document.querySelectorAll(".pane")) p.classList.toggle("active", p.id === tab.dataset.tab);
        if (tab.dataset.tab === "play") $("play-canvas").focus();
      });
    }
  }

  loadImages().then(() => {
    setupTabs();
    setupLegend();
    setupEpisodes();
    setupPlay();
    setupCurves();
    // What the browser tests read: the game and the panels, as the page shows them.
    window.offswitchViewer = {
      ready: true,
      game: () => ({ state: game.state, t: game.t, total: game.total, over: game.over, summary: game.summary, reveal: game.reveal || "", world: game.key }),
      panels: () => [...$("panels").children].map((p) => ({ condition: DATA.conditions[Number(p.dataset.condition)].label, state: Number(p.dataset.state), cell: Number(p.dataset.cell) })),
      showStep, longest, data: DATA,
    };
  });
})();
