// The arena: every player's dot on a canvas, where the server last placed it, and a table of the
// players with their positions and round-trip times.

const COLORS = ['#3563e9', '#12805c', '#c4320a', '#8e44ad', '#d68910', '#17a2b8', '#e83e8c', '#5d6d7e'];

/** A colour that stays with a name. */
function colorOf(name) {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return COLORS[hash % COLORS.length];
}

/** A round trip as the page shows it. */
export function roundTrip(rtt) {
  if (rtt === null || rtt === undefined) return '—';
  return rtt < 10 ? `${rtt.toFixed(1)} ms` : `${Math.round(rtt)} ms`;
}

export class ArenaView {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {HTMLElement} table the tbody that lists the players
   */
  constructor(canvas, table) {
    this.canvas = canvas;
    this.table = table;
    this.size = { width: canvas.width, height: canvas.height };
    this.players = [];
    this.me = undefined;
    const ratio = window.devicePixelRatio || 1;
    canvas.style.aspectRatio = `${canvas.width} / ${canvas.height}`;
    canvas.width *= ratio;
    canvas.height *= ratio;
    this.context = canvas.getContext('2d');
    this.context.scale(ratio, ratio);
    this.draw();
  }

  /** In the arena as `name`, on a field of `width` × `height`. */
  entered(name, width, height) {
    this.me = name;
    this.size = { width, height };
    this.draw();
  }

  exited() {
    this.me = undefined;
    this.update([]);
  }

  /** A state from the server: every player, sorted by name. */
  update(players) {
    this.players = players;
    this.table.replaceChildren(
      ...players.map((p) => {
        const row = document.createElement('tr');
        Object.assign(row.dataset, { name: p.name, x: String(p.x), y: String(p.y), rtt: p.rtt === null ? '' : String(p.rtt) });
        const swatch = Object.assign(document.createElement('span'), { className: 'swatch' });
        swatch.style.background = colorOf(p.name);
        const who = document.createElement('td');
        who.append(swatch, `${p.name}${p.name === this.me ? ' (you)' : ''}`);
        const where = Object.assign(document.createElement('td'), { textContent: `${Math.round(p.x)}, ${Math.round(p.y)}` });
        const rtt = Object.assign(document.createElement('td'), { textContent: roundTrip(p.rtt) });
        row.append(who, where, rtt);
        return row;
      }),
    );
    this.draw();
  }

  draw() {
    const g = this.context;
    const { width, height } = this.size;
    const scaleX = this.canvas.width / (window.devicePixelRatio || 1) / width;
    const scaleY = this.canvas.height / (window.devicePixelRatio || 1) / height;
    g.clearRect(0, 0, width * scaleX, height * scaleY);
    g.strokeStyle = '#eef1f6';
    g.lineWidth = 1;
    for (let x = 0; x <= width; x += 40) {
      g.beginPath();
      g.moveTo(x * scaleX, 0);
      g.lineTo(x * scaleX, height * scaleY);
      g.stroke();
    }
    for (let y = 0; y <= height; y += 40) {
      g.beginPath();
      g.moveTo(0, y * scaleY);
      g.lineTo(width * scaleX, y * scaleY);
      g.stroke();
    }
    g.font = '12px system-ui, sans-serif';
    g.textAlign = 'center';
    for (const p of this.players) {
      const x = p.x * scaleX;
      const y = p.y * scaleY;
      g.beginPath();
      g.arc(x, y, 9, 0, Math.PI * 2);
      g.fillStyle = colorOf(p.name);
      g.fill();
      if (p.name === this.me) {
        g.lineWidth = 3;
        g.strokeStyle = '#1d2433';
        g.stroke();
      }
      g.fillStyle = '#1d2433';
      g.fillText(`${p.name} · ${roundTrip(p.rtt)}`, x, y - 15);
    }
    this.canvas.dataset.players = String(this.players.length);
  }
}
