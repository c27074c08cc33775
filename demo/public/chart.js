// A small line chart of the last samples on a canvas, sharp on high-DPI screens.

const CAPACITY = 160;
const RANGE = 1.5;

export class Chart {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.values = [];
    const ratio = window.devicePixelRatio || 1;
    this.width = canvas.width;
    this.height = canvas.height;
    canvas.style.aspectRatio = `${this.width} / ${this.height}`;
    canvas.width = this.width * ratio;
    canvas.height = this.height * ratio;
    this.context = canvas.getContext('2d');
    this.context.scale(ratio, ratio);
    this.draw();
  }

  push(value) {
    this.values.push(value);
    if (this.values.length > CAPACITY) this.values.shift();
    this.draw();
  }

  draw() {
    const { context: g, width, height, values } = this;
    const y = (value) => height / 2 - (value / RANGE) * (height / 2 - 8);
    g.clearRect(0, 0, width, height);
    g.lineWidth = 1;
    g.strokeStyle = '#e3e7ee';
    g.fillStyle = '#8a94a6';
    g.font = '11px system-ui, sans-serif';
    for (const level of [-1, 0, 1]) {
      g.beginPath();
      g.moveTo(32, y(level));
      g.lineTo(width, y(level));
      g.stroke();
      g.fillText(String(level), 8, y(level) + 4);
    }
    if (values.length > 1) {
      const step = (width - 32) / (CAPACITY - 1);
      const left = width - step * (values.length - 1);
      g.beginPath();
      values.forEach((value, i) => (i === 0 ? g.moveTo(left, y(value)) : g.lineTo(left + i * step, y(value))));
      g.lineWidth = 2;
      g.strokeStyle = '#3563e9';
      g.lineJoin = 'round';
      g.stroke();
    }
    this.canvas.dataset.points = String(values.length);
  }
}
