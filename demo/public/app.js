// The page: a login box, then five tabs, one per workflow, over one reconnecting WebSocket.
import { ArenaView } from './arena.js';
import { Chart } from './chart.js';
import { Connection } from './connection.js';

const LOG_LIMIT = 100;
const byId = (id) => document.querySelector(`[data-testid="${id}"]`);

const state = {
  /** The name to log in with, kept to log in again after a drop. */
  wanted: undefined,
  /** The name the server welcomed, while online. */
  name: undefined,
  /** Groups the server confirmed, joined again after a drop. */
  groups: new Set(),
  subscribed: false,
  sampleTimes: [],
  /** In the arena: entered again after a drop. */
  inArena: false,
};

/** The arrow keys and the direction each one holds. */
const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
/** The arrow keys down now, and the direction last sent for them. */
const held = new Set();
let sentMove = '0,0';

const chart = new Chart(byId('stream-chart'));
const arena = new ArenaView(byId('arena-canvas'), byId('arena-players'));
const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const connection = new Connection(`${scheme}://${location.host}/ws`, {
  open: onOpen,
  message: onMessage,
  closed: onClosed,
});
let countdown;

function setStatus(text, kind = '') {
  const status = byId('status');
  status.textContent = text;
  status.dataset.kind = kind;
}

function onOpen() {
  clearInterval(countdown);
  if (state.wanted) {
    setStatus(`logging in as ${state.wanted}…`);
    connection.send({ type: 'login', name: state.wanted });
  } else {
    setStatus('connected — pick a name', 'ready');
  }
}

function onClosed(retryAt) {
  state.name = undefined;
  held.clear();
  sentMove = '0,0';
  arena.update([]); // nobody is where the server last said until it says so again
  document.body.classList.add('offline');
  clearInterval(countdown);
  const show = () => {
    const seconds = Math.ceil((retryAt - Date.now()) / 1000);
    setStatus(seconds > 0 ? `disconnected — retrying in ${seconds} s` : 'connecting…', 'down');
  };
  show();
  countdown = setInterval(show, 250);
}

const handlers = {
  welcome({ name }) {
    state.name = name;
    setStatus(`online as ${name}`, 'online');
    document.body.classList.remove('offline');
    byId('login-form').hidden = true;
    document.getElementById('workflows').hidden = false;
    for (const group of state.groups) connection.send({ type: 'join', group });
    if (state.subscribed) connection.send({ type: 'subscribe' });
    if (state.inArena) connection.send({ type: 'enter' });
  },
  users({ names }) {
    byId('users').textContent = names.map((n) => (n === state.name ? `${n} (you)` : n)).join(', ');
    const select = byId('route-to');
    const chosen = select.value;
    const others = names.filter((n) => n !== state.name);
    select.replaceChildren(
      others.length ? new Option('Choose a user', '') : new Option('nobody else online', ''),
      ...others.map((n) => new Option(n, n, false, n === chosen)),
    );
  },
  echo({ text }) {
    log('echo-log', 'in', `echo: ${text}`);
  },
  routed({ from, text }) {
    log('route-log', 'in', `${from} → you: ${text}`);
  },
  group({ group, from, text }) {
    log('group-log', from === state.name ? 'out' : 'in', `[${group}] ${from}: ${text}`);
  },
  joined({ group }) {
    state.groups.add(group);
    renderGroups();
    log('group-log', 'info', `joined ${group}`);
  },
  left({ group }) {
    state.groups.delete(group);
    renderGroups();
    log('group-log', 'info', `left ${group}`);
  },
  subscribed() {
    setSubscribed(true);
  },
  unsubscribed() {
    setSubscribed(false);
  },
  stream({ seq, value }) {
    chart.push(value);
    byId('stream-seq').textContent = String(seq);
    byId('stream-value').textContent = value.toFixed(3);
    const now = performance.now();
    state.sampleTimes = state.sampleTimes.filter((t) => now - t < 1000).concat(now);
    byId('stream-rate').textContent = `${state.sampleTimes.length}/s`;
  },
  entered({ name, width, height }) {
    setInArena(true);
    arena.entered(name, width, height);
  },
  exited() {
    setInArena(false);
    arena.exited();
  },
  arena({ players }) {
    arena.update(players);
  },
  error({ reason, request }) {
    const where = {
      echo: 'echo-log', route: 'route-log', join: 'group-log', leave: 'group-log', publish: 'group-log',
      subscribe: 'stream-log', unsubscribe: 'stream-log', enter: 'arena-log', move: 'arena-log', exit: 'arena-log',
    }[request];
    if (request === 'login') return refusedLogin(reason);
    if (where) return log(where, 'error', reason);
    byId('error-line').textContent = `server: ${reason}`;
  },
};

function onMessage(message) {
  if (Object.hasOwn(handlers, message.type)) handlers[message.type](message);
}

function refusedLogin(reason) {
  state.wanted = undefined;
  byId('login-error').textContent = reason;
  byId('login-form').hidden = false;
  document.getElementById('workflows').hidden = true;
  setStatus('connected — pick a name', 'ready');
}

function setSubscribed(on) {
  state.subscribed = on;
  byId('stream-state').textContent = on ? 'subscribed' : 'not subscribed';
  byId('stream-state').dataset.on = String(on);
  byId('stream-subscribe').disabled = on;
  byId('stream-unsubscribe').disabled = !on;
}

function setInArena(on) {
  state.inArena = on;
  held.clear();
  sentMove = '0,0';
  byId('arena-state').textContent = on ? 'inside' : 'outside';
  byId('arena-state').dataset.on = String(on);
  byId('arena-enter').disabled = on;
  byId('arena-exit').disabled = !on;
}

/** Sends the direction the held arrow keys make, when it changed (opposite keys cancel out). */
function sendMove() {
  let dx = 0;
  let dy = 0;
  for (const key of held) {
    dx += ARROWS[key][0];
    dy += ARROWS[key][1];
  }
  const move = `${dx},${dy}`;
  if (move === sentMove || !state.inArena) return;
  sentMove = move;
  connection.send({ type: 'move', dx, dy });
}

function renderGroups() {
  const list = byId('group-list');
  if (state.groups.size === 0) return list.replaceChildren(Object.assign(document.createElement('em'), { textContent: 'none' }));
  list.replaceChildren(
    ...[...state.groups].sort().map((group) => {
      const chip = Object.assign(document.createElement('button'), { type: 'button', className: 'chip', textContent: group });
      chip.addEventListener('click', () => (byId('group-name').value = group));
      return chip;
    }),
  );
}

function log(testId, kind, text) {
  const item = document.createElement('li');
  item.dataset.kind = kind;
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  item.append(time, document.createTextNode(text));
  const list = byId(testId);
  list.prepend(item);
  while (list.children.length > LOG_LIMIT) list.lastElementChild.remove();
}

function request(message, logTo, line) {
  if (!connection.send(message)) {
    byId('error-line').textContent = 'offline — not sent';
    return false;
  }
  if (logTo) log(logTo, 'out', line);
  return true;
}

function onSubmit(id, handler) {
  document.getElementById(id).addEventListener('submit', (event) => {
    event.preventDefault();
    byId('error-line').textContent = '';
    handler();
  });
}

onSubmit('login', () => {
  state.wanted = byId('login-name').value.trim();
  byId('login-error').textContent = '';
  if (connection.open) onOpen();
  else setStatus(`will log in as ${state.wanted} once connected…`);
});

onSubmit('echo-form', () => {
  const input = byId('echo-text');
  if (request({ type: 'echo', text: input.value }, 'echo-log', `you: ${input.value}`)) input.value = '';
});

onSubmit('route-form', () => {
  const to = byId('route-to').value;
  const input = byId('route-text');
  if (request({ type: 'route', to, text: input.value }, 'route-log', `you → ${to}: ${input.value}`)) input.value = '';
});

onSubmit('group-form', () => request({ type: 'join', group: byId('group-name').value.trim() }));

byId('group-leave').addEventListener('click', () => {
  const name = byId('group-name');
  if (name.reportValidity()) request({ type: 'leave', group: name.value.trim() });
});

onSubmit('publish-form', () => {
  const name = byId('group-name');
  const input = byId('group-text');
  if (!name.reportValidity()) return;
  if (request({ type: 'publish', group: name.value.trim(), text: input.value })) input.value = '';
});

byId('stream-subscribe').addEventListener('click', () => request({ type: 'subscribe' }));
byId('stream-unsubscribe').addEventListener('click', () => request({ type: 'unsubscribe' }));

byId('arena-enter').addEventListener('click', () => request({ type: 'enter' }));
byId('arena-exit').addEventListener('click', () => request({ type: 'exit' }));

window.addEventListener('keydown', (event) => {
  const arenaShown = !document.querySelector('[data-panel="arena"]').hidden;
  if (!Object.hasOwn(ARROWS, event.key) || !state.inArena || !arenaShown || event.target.matches?.('input, select')) return;
  event.preventDefault(); // the page must not scroll
  held.add(event.key);
  sendMove();
});
window.addEventListener('keyup', (event) => {
  if (held.delete(event.key)) sendMove();
});
window.addEventListener('blur', () => {
  held.clear();
  sendMove();
});

for (const tab of document.querySelectorAll('[role="tab"]')) {
  tab.addEventListener('click', () => {
    for (const other of document.querySelectorAll('[role="tab"]')) other.setAttribute('aria-selected', String(other === tab));
    for (const panel of document.querySelectorAll('[data-panel]')) panel.hidden = panel.dataset.panel !== tab.dataset.tab;
  });
}

connection.start();
