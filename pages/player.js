// The Live page's player: shows explained steps that the server computed ahead, at a steady rate,
// the way a video player plays from its buffer. Python sends chunks of steps (pages/player.py); when
// fewer than `buffer_s` seconds of them are left, the player asks for the next chunk ("need"), and
// Pause tells the server which step is on screen ("pause"), so that the page stops exactly there.
//
// data: {episode, rate, buffer_s, names, colors, done, last, answered, history, history_start, window,
//        steps: [{t, frame, action, policy, return, sentence, gap, bars (HTML), sums}]}
// (episode: one play; last: the last step played so far; answered: the last "need" request served;
//  history: the time chart's points before this play's first step, from step history_start;
//  window: how many of the chart's last steps the player keeps.)

const players = new Map(); // component key -> the player's state, kept across Streamlit's reruns
const RETRY_MS = 5000; // ask again for steps a request has not brought after this long

function element(tag, className, parent, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function metric(parent, label) {
  // the structure of st.metric, so that whatever reads the page's "Step" metric reads this one while playing
  const box = element("div", "metric", parent);
  box.setAttribute("data-testid", "stMetric");
  element("div", "metric-label", box, label).setAttribute("data-testid", "stMetricLabel");
  const value = element("div", "metric-value", box, "");
  value.setAttribute("data-testid", "stMetricValue");
  return value;
}

function build(parentElement) {
  const root = element("div", "player", parentElement);
  const controls = element("div", "controls", root);
  const pause = element("button", "pause", controls, "Pause");
  const status = element("span", "status", controls, "");
  const top = element("div", "row", root);
  const frame = element("img", "frame", element("div", "column", top));
  frame.alt = "the environment";
  const info = element("div", "column", top);
  const numbers = element("div", "metrics", info);
  const view = {
    root, pause, status, frame,
    step: metric(numbers, "Step"), ret: metric(numbers, "Return so far"), action: metric(info, "Action"),
    policy: element("div", "caption", info), sentence: element("div", "sentence", info),
  };
  const bottom = element("div", "row", root);
  const left = element("div", "column narrow", bottom);
  view.bars = element("div", "bars", left);
  view.gap = element("div", "gap", left);
  const right = element("div", "column wide", bottom);
  view.legend = element("div", "legend", right);
  view.canvas = element("canvas", "timeline", right);
  return view;
}

function drawTimeline(player) {
  const { canvas } = player.view;
  const width = canvas.clientWidth || 600, height = canvas.clientHeight || 260;
  const scale = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * scale)) {
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
  }
  const context = canvas.getContext("2d");
  context.setTransform(scale, 0, 0, scale, 0, 0);
  context.clearRect(0, 0, width, height);
  const points = player.timeline;
  if (!points.length) return;
  const firstStep = player.timelineStart, lastStep = firstStep + points.length - 1;
  let limit = 1e-12;
  for (const sums of points) for (const v of sums) limit = Math.max(limit, Math.abs(v));
  const pad = 28, x = (t) => pad + (width - pad - 8) * (lastStep > firstStep ? (t - firstStep) / (lastStep - firstStep) : 1);
  const y = (v) => height / 2 - (height / 2 - 12) * v / limit;
  context.strokeStyle = "#bbb";
  context.lineWidth = 1;
  context.beginPath();
  context.moveTo(pad, y(0));
  context.lineTo(width - 8, y(0));
  context.stroke();
  context.fillStyle = "#888";
  context.font = "11px sans-serif";
  context.fillText(`+${limit.toPrecision(2)}`, 0, 12);
  context.fillText(`step ${firstStep}`, pad, height - 2);
  const label = `step ${lastStep}`;
  context.fillText(label, width - 8 - context.measureText(label).width, height - 2);
  player.names.forEach((name, g) => {
    context.strokeStyle = player.colors[g % player.colors.length];
    context.lineWidth = 1.5;
    context.beginPath();
    points.forEach((sums, k) => (k ? context.lineTo : context.moveTo).call(context, x(firstStep + k), y(sums[g])));
    context.stroke();
  });
}

function show(player, step) {
  const { view } = player;
  view.frame.src = step.frame;
  view.step.textContent = String(step.t);
  view.ret.textContent = step.return.toFixed(1);
  view.action.textContent = step.action;
  view.policy.textContent = step.policy;
  view.sentence.textContent = step.sentence;
  view.gap.textContent = step.gap;
  view.bars.innerHTML = step.bars; // the Live page's own bars (pages/common.py: shown_bars_html), escaped there
  player.timeline.push(step.sums);
  if (player.timeline.length > player.window) {  // the last `window` steps: memory stays flat in long games
    player.timeline.shift();
    player.timelineStart += 1;
  }
  drawTimeline(player);
  player.shown = step.t;
  const log = (window.__rlPlayerLog = window.__rlPlayerLog || []); // display times, for the benchmark
  log.push([step.t, performance.now()]);
  if (log.length > 20000) log.splice(0, 10000);
}

function tick(player, now) {
  if (!player.view.root.isConnected) { player.stopped = true; return; } // the page moved on
  if (player.playing && player.queue.length && now >= player.due) {
    show(player, player.queue.shift());
    player.due = Math.max(player.due + 1000 / player.rate, now - 100); // steady; no burst after a stall
  }
  const ahead = player.queue.length;
  const unanswered = player.pending !== null && now - player.askedAt > RETRY_MS; // a lost or failed request
  const wanted = ahead < player.bufferS * player.rate;
  if (player.playing && !player.done && (player.pending === null || unanswered) && wanted) {
    player.pending = player.requests + 1;
    player.askedAt = now;
    player.setTriggerValue("need", { from: player.last + 1, request: ++player.requests });
  }
  if (player.playing && player.done && !ahead) { // the episode ended: the page takes over at its last state
    player.playing = false;
    player.setTriggerValue("pause", player.last + 1);
  }
  player.view.status.textContent = player.playing
    ? (ahead ? `${player.rate} steps/s · ${(ahead / player.rate).toFixed(1)} s ahead` : "waiting for the next steps…")
    : "";
  requestAnimationFrame((time) => tick(player, time));
}

function create(parentElement, data) {
  const player = {
    episode: data.episode, view: build(parentElement), queue: [], timeline: [], timelineStart: 0,
    window: data.window, first: data.steps.length ? data.steps[0].t : data.last + 1, last: -1, shown: -1,
    askedAt: 0, pending: null, requests: 0, playing: true, done: false, due: performance.now(), stopped: false,
  };
  player.view.pause.onclick = () => {
    player.playing = false;
    player.view.pause.disabled = true;
    player.setTriggerValue("pause", player.shown >= 0 ? player.shown : player.first); // nothing shown yet: where it began
  };
  requestAnimationFrame((time) => tick(player, time));
  return player;
}

export default function (component) {
  const { data, key, parentElement, setTriggerValue } = component;
  let player = players.get(key);
  if (!player || player.episode !== data.episode || player.stopped) {
    if (player) player.view.root.remove();
    player = create(parentElement, data);
    players.set(key, player);
  } else if (player.view.root.parentNode !== parentElement) {
    parentElement.appendChild(player.view.root);
  }
  Object.assign(player, { setTriggerValue, rate: data.rate, bufferS: data.buffer_s, names: data.names,
                         colors: data.colors });
  if (!player.timeline.length && data.history) { // the episode so far, as the page's time chart had it
    player.timeline = data.history.slice(-player.window);
    player.timelineStart = data.history_start + data.history.length - player.timeline.length;
  }
  const fresh = data.steps.filter((step) => step.t > player.last);
  if (fresh.length && !player.timeline.length) player.timelineStart = fresh[0].t; // no history came: start here
  if (fresh.length) {
    player.queue.push(...fresh);
    player.last = fresh[fresh.length - 1].t;
  }
  if (player.pending !== null && data.answered >= player.pending) player.pending = null;
  player.done = data.done && player.last >= data.last;
  player.view.legend.replaceChildren();
  data.names.forEach((name, g) => {
    const item = element("span", "legend-item", player.view.legend, name);
    item.style.borderColor = data.colors[g % data.colors.length];
  });
}
