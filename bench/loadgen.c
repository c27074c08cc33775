// C load generator for the wspoll benchmark: the same scenarios and semantics as bench/load.ts,
// with far less cost per message, so that the servers (not the generator) are what is measured.
//
// One thread, one epoll loop (edge-triggered), non-blocking TCP_NODELAY sockets to 127.0.0.1.
// Frames are built and masked once, up front: every write is a slice of one precomputed buffer of
// identical frames, so a connection's pending output is just "so many bytes of that endless
// stream, starting at this offset in a frame". Reads go into one shared 256 KiB buffer; a small
// state machine per connection walks frame headers and skips payloads (never copied, never
// unmasked), accepting unmasked frames (real servers) and masked ones (the raw node:net echo sends
// our own frames back). Only complete data messages (FIN on opcode 0/1/2) are counted.
//
// Build:  cc -O2 -Wall -Wextra -o artifacts/loadgen bench/loadgen.c     (bench/run.ts does this)
// Usage:  artifacts/loadgen SCENARIO PORT [key=value ...]
//   SCENARIO: echo | pipeline | large (echo with other defaults) | handshakes | hold | broadcast | latency
//   keys: conns size depth text window concurrency warm_ms duration_ms count server_pid
// Prints one JSON line, {"value":N,"extra":{...}}, like load.ts's Result. Exit 1 on a failure
// (message on stderr), 2 on a usage error.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define HOST "127.0.0.1"
#define KEY "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 §1.3 sample key: a fixed key is valid
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" // its accept value
#define READ_BUF_SIZE (256 * 1024)
#define HEAD_MAX 16384              // longest response head accepted (as load.ts)
#define OPEN_CONCURRENCY 100        // handshakes in flight while opening connections (openMany; hold: concurrency)
#define MAX_EVENTS 256
#define IDLE_LIMIT_NS (10 * 1000000000LL)  // nothing happened for this long: abort
#define SETUP_LIMIT_NS (60 * 1000000000LL) // opening connections took longer than this: abort
#define GRACE_NS (500 * 1000000LL)          // handshakes: time given to in-flight closes at the end

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};
static const uint8_t CLOSE_FRAME[8] = {0x88, 0x82, 0x37, 0xfa, 0x21, 0x3d, 0x03 ^ 0x37, 0xe8 ^ 0xfa}; // 1000

// ---- options ---------------------------------------------------------------------------------
typedef enum { K_ECHO, K_HANDSHAKES, K_BROADCAST, K_LATENCY, K_HOLD } Kind;

static struct {
  Kind kind;
  int port;
  long conns, size, depth, text, window, concurrency, warm_ms, duration_ms, count, server_pid;
} opt;

enum { A_ECHO = 1, A_HS = 2, A_BC = 4, A_LAT = 8, A_HOLD = 16, A_ALL = 31 };
static const struct {
  const char *name;
  long *val;
  long min, max;
  int applies;
} KEYS[] = {
    {"conns", &opt.conns, 1, 1000000, A_ECHO | A_BC | A_HOLD},
    {"size", &opt.size, 0, 16 << 20, A_ECHO | A_BC | A_LAT},
    {"depth", &opt.depth, 1, 65536, A_ECHO},
    {"text", &opt.text, 0, 1, A_ECHO | A_BC | A_LAT},
    {"window", &opt.window, 1, 65536, A_BC},
    {"concurrency", &opt.concurrency, 1, 100000, A_HS | A_HOLD},
    {"warm_ms", &opt.warm_ms, 0, 3600000, A_ALL & ~A_HOLD}, // hold has no warm-up: it measures the opening
    {"duration_ms", &opt.duration_ms, 1, 3600000, A_ECHO | A_HS | A_BC},
    {"count", &opt.count, 1, 10000000, A_LAT},
    {"server_pid", &opt.server_pid, 1, 0x7fffffff, A_ALL}, // latency reports no CPU figures (as load.ts)
};

static void usage(const char *why) {
  if (why) fprintf(stderr, "loadgen: %s\n", why);
  fprintf(stderr,
          "usage: loadgen SCENARIO PORT [key=value ...]\n"
          "  echo        conns=100 size=32 depth=1      messages/s echoed, depth in flight per connection\n"
          "  pipeline    conns=100 size=512 depth=16    (echo with these defaults)\n"
          "  large       conns=10 size=65536 depth=1    (echo with these defaults)\n"
          "  handshakes  concurrency=50                 handshakes/s (open, 101, close)\n"
          "  hold        conns=10000 concurrency=256    handshakes/s opening conns that stay open (no warm-up)\n"
          "  broadcast   conns=1000 size=64 window=16   deliveries/s, one sender\n"
          "  latency     size=32 warm_ms=1000 count=20000   round-trip percentiles, value = p99.9 in us\n"
          "  echo, broadcast, latency: text=1 sends text frames (printable ASCII) instead of binary\n"
          "  echo, handshakes, broadcast: warm_ms=500 duration_ms=2000; server_pid=N adds the server's CPU use\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  if (argc < 3) usage(NULL);
  const char *sc = argv[1];
  opt.warm_ms = 500;
  opt.duration_ms = 2000;
  if (!strcmp(sc, "echo")) opt.kind = K_ECHO, opt.conns = 100, opt.size = 32, opt.depth = 1;
  else if (!strcmp(sc, "pipeline")) opt.kind = K_ECHO, opt.conns = 100, opt.size = 512, opt.depth = 16;
  else if (!strcmp(sc, "large")) opt.kind = K_ECHO, opt.conns = 10, opt.size = 65536, opt.depth = 1;
  else if (!strcmp(sc, "handshakes")) opt.kind = K_HANDSHAKES, opt.concurrency = 50;
  else if (!strcmp(sc, "broadcast")) opt.kind = K_BROADCAST, opt.conns = 1000, opt.size = 64, opt.window = 16;
  else if (!strcmp(sc, "latency")) opt.kind = K_LATENCY, opt.size = 32, opt.warm_ms = 1000, opt.count = 20000;
  else if (!strcmp(sc, "hold")) opt.kind = K_HOLD, opt.conns = 10000, opt.concurrency = 256;
  else usage("unknown scenario");
  const int mask = 1 << opt.kind;
  char *end;
  errno = 0;
  long port = strtol(argv[2], &end, 10);
  if (errno || *end || end == argv[2] || port < 1 || port > 65535) usage("PORT must be 1..65535");
  opt.port = (int)port;
  for (int i = 3; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    if (!eq) usage("arguments after PORT are key=value");
    size_t klen = (size_t)(eq - argv[i]);
    size_t k = 0;
    while (k < sizeof KEYS / sizeof KEYS[0] && (strlen(KEYS[k].name) != klen || strncmp(KEYS[k].name, argv[i], klen))) k++;
    if (k == sizeof KEYS / sizeof KEYS[0]) {
      fprintf(stderr, "loadgen: unknown key %.*s\n", (int)klen, argv[i]);
      usage(NULL);
    }
    if (!(KEYS[k].applies & mask)) {
      fprintf(stderr, "loadgen: %s does not apply to %s\n", KEYS[k].name, sc);
      usage(NULL);
    }
    errno = 0;
    long v = strtol(eq + 1, &end, 10);
    if (errno || *end || end == eq + 1 || v < KEYS[k].min || v > KEYS[k].max) {
      fprintf(stderr, "loadgen: %s must be an integer in %ld..%ld\n", KEYS[k].name, KEYS[k].min, KEYS[k].max);
      usage(NULL);
    }
    *KEYS[k].val = v;
  }
}

// ---- utilities -------------------------------------------------------------------------------
static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("loadgen: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory (%zu bytes)", n);
  return p;
}

/** Math.round for x >= 0 (no libm: the build command has no -lm). */
static long round_pos(double x) { return (long)(x + 0.5); }

// ---- frames ----------------------------------------------------------------------------------
static uint8_t *stream;    // identical masked frames, back to back (depth + 1, window + 1, or 2)
static size_t stream_len;  // bytes in `stream`
static size_t flen;        // bytes of one frame
static char request[256];  // the upgrade request
static size_t request_len;

/** Payload byte i. Text (text=1) must be valid UTF-8 or the server fails the connection; it is
 *  printable ASCII, as JSON mostly is. Binary covers every byte value. */
static uint8_t payload_byte(size_t i) {
  return opt.text ? (uint8_t)(0x20 + (i * 31 + 7) % 95) : (uint8_t)((i * 31 + 7) & 0xff);
}

/** One masked data frame (FIN set; text or binary per opt.text) with `size` payload bytes, written
 *  at `f`; returns its length. */
static size_t masked_frame(uint8_t *f, size_t size) {
  size_t ext = size < 126 ? 0 : size < 65536 ? 2 : 8;
  size_t head = 2 + ext + 4;
  if (f) {
    f[0] = 0x80 | (opt.text ? 0x1 : 0x2);
    if (ext == 0) f[1] = (uint8_t)(0x80 | size);
    else if (ext == 2) {
      f[1] = 0x80 | 126;
      f[2] = (uint8_t)(size >> 8);
      f[3] = (uint8_t)size;
    } else {
      f[1] = 0x80 | 127;
      for (int i = 0; i < 8; i++) f[2 + i] = (uint8_t)((uint64_t)size >> (56 - 8 * i));
    }
    for (size_t i = 0; i < 4; i++) f[2 + ext + i] = MASK[i];
    for (size_t i = 0; i < size; i++) f[head + i] = payload_byte(i) ^ MASK[i & 3];
  }
  return head + size;
}

/** The stream holds `n` frames; output starts at an offset inside the first frame, so a stream of
 *  depth+1 frames can always serve `depth` frames in one write. */
static void build_stream(size_t n) {
  flen = masked_frame(NULL, (size_t)opt.size);
  if ((uint64_t)flen * n > (256u << 20)) die("size x depth (or window) too large: over 256 MiB of frames");
  stream_len = flen * n;
  stream = xmalloc(stream_len);
  for (size_t i = 0; i < n; i++) masked_frame(stream + i * flen, (size_t)opt.size);
}

// ---- connections -----------------------------------------------------------------------------
enum { ST_FREE, ST_CONNECTING, ST_HEAD, ST_OPEN };

typedef struct {
  int fd;
  int state;
  uint32_t gen;             // bumped at every close: stale epoll events are recognised and ignored
  bool close_seen, shut, shut_wanted;
  const uint8_t *raw;       // small output written before the stream (request, close frame)
  size_t raw_len;
  uint64_t out_left;        // bytes of the frame stream still to write
  size_t out_pos;           // where the next one starts in `stream` (< flen)
  char *head;               // response head split across reads
  size_t head_len, head_cap;
  uint8_t hb[14];           // frame header split across reads
  uint8_t hl, op;
  bool fin;
  uint64_t skip;            // payload bytes of the current frame still to come
  uint64_t recv;            // data messages received
} Conn;

static Conn *conns;
static int nslots;
static int ep;
static uint8_t rbuf[READ_BUF_SIZE];
static int64_t last_activity;

// scenario state
static bool running = true;
static long started, opened; // openMany
static bool all_open;
static long lost;
static uint64_t total;       // echo: messages; broadcast: deliveries; handshakes: successes
static long failures;        // handshakes
static char first_error[256];
static int *free_slots;      // handshakes: slots ready for a new connection
static int nfree;
static long restart_pending;
static int32_t *ring;        // broadcast
static uint64_t complete, sent;
static Conn *sender;
static int64_t *samples;     // latency
static long nsamples;
static bool lat_warm = true, lat_done;
static int64_t lat_warm_end, lat_t0;

static void conn_ended(Conn *c, const char *why);
static void on_open(Conn *c);
static void on_messages(Conn *c, uint64_t k);

static bool pending(const Conn *c) { return c->raw_len > 0 || c->out_left > 0; }

/** Writes what is pending until done or EAGAIN. Returns false (errno set) on a socket error. */
static bool conn_flush(Conn *c) {
  while (c->raw_len > 0) {
    ssize_t n = write(c->fd, c->raw, c->raw_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c->raw += n;
    c->raw_len -= (size_t)n;
  }
  while (c->out_left > 0) {
    size_t len = stream_len - c->out_pos;
    if (c->out_left < len) len = (size_t)c->out_left;
    ssize_t n = write(c->fd, stream + c->out_pos, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c->out_left -= (uint64_t)n;
    c->out_pos = (c->out_pos + (size_t)n) % flen;
  }
  if (c->shut_wanted && !c->shut) {
    c->shut = true;
    shutdown(c->fd, SHUT_WR);
  }
  return true;
}

/** Queues `frames` frames of the stream and writes them (one write when the socket takes them). */
static void send_frames(Conn *c, uint64_t frames) {
  c->out_left += frames * flen;
  if (!conn_flush(c)) conn_ended(c, strerror(errno));
}

/** Opens a connection in slot i. Returns 0, or an errno when it failed at once. */
static int conn_start(int i) {
  Conn *c = &conns[i];
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)opt.port);
  inet_pton(AF_INET, HOST, &sa.sin_addr);
  int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  if (r < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return e;
  }
  uint32_t gen = c->gen;
  memset(c, 0, sizeof *c);
  c->gen = gen;
  c->fd = fd;
  c->state = ST_CONNECTING;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                           .data.u64 = (uint64_t)i | (uint64_t)gen << 32};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
  return 0;
}

static void conn_close(Conn *c) {
  if (c->state == ST_FREE) return;
  close(c->fd);
  free(c->head);
  c->head = NULL;
  c->fd = -1;
  c->state = ST_FREE;
  c->gen++;
}

/** The socket is connected (or failed to): send the upgrade request. */
static void conn_connected(Conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err) {
    char why[128];
    snprintf(why, sizeof why, "connect to " HOST ":%d: %s", opt.port, strerror(err));
    conn_ended(c, why);
    return;
  }
  c->state = ST_HEAD;
  c->raw = (const uint8_t *)request;
  c->raw_len = request_len;
  if (!conn_flush(c)) conn_ended(c, strerror(errno));
}

static size_t header_len(uint8_t b1) {
  size_t len7 = b1 & 0x7f;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}

static void header(Conn *c, const uint8_t *b) {
  size_t len7 = b[1] & 0x7f;
  c->fin = (b[0] & 0x80) != 0;
  c->op = b[0] & 0x0f;
  if (len7 < 126) c->skip = len7;
  else if (len7 == 126) c->skip = (uint64_t)b[2] << 8 | b[3];
  else {
    c->skip = 0;
    for (int i = 0; i < 8; i++) c->skip = c->skip << 8 | b[2 + i];
  }
}

/** A frame just ended: true when it completed a data message. */
static bool end_frame(Conn *c) {
  if (c->op < 3) {
    if (!c->fin) return false;
    c->recv++;
    return true;
  }
  if (c->op == 8) c->close_seen = true;
  return false;
}

/** Parses bytes [i, n) of b; returns the number of complete data messages. */
static uint64_t feed(Conn *c, const uint8_t *b, size_t i, size_t n) {
  uint64_t msgs = 0;
  while (i < n) {
    if (c->skip > 0) {
      size_t left = n - i;
      if (left < c->skip) {
        c->skip -= left;
        return msgs;
      }
      i += (size_t)c->skip;
      c->skip = 0;
      if (end_frame(c)) msgs++;
      continue;
    }
    if (c->hl == 0 && n - i >= 2) {
      size_t hlen = header_len(b[i + 1]);
      if (n - i < hlen) {
        memcpy(c->hb, b + i, n - i);
        c->hl = (uint8_t)(n - i);
        return msgs;
      }
      header(c, b + i);
      i += hlen;
    } else {
      c->hb[c->hl++] = b[i++];
      if (c->hl < 2) continue;
      if (c->hl < header_len(c->hb[1])) continue;
      header(c, c->hb);
      c->hl = 0;
    }
    if (c->skip == 0 && end_frame(c)) msgs++;
  }
  return msgs;
}

/** Frame bytes of an open connection. */
static void on_frames(Conn *c, const uint8_t *b, size_t i, size_t n) {
  uint32_t gen = c->gen;
  uint64_t k = feed(c, b, i, n);
  if (k > 0) on_messages(c, k);
  if (c->gen != gen) return;
  if (c->close_seen && !c->shut_wanted && opt.kind == K_HANDSHAKES) {
    c->shut_wanted = true; // end(): half-close once what is queued is written
    if (!pending(c)) {
      c->shut = true;
      shutdown(c->fd, SHUT_WR);
    }
  }
}

/** Bytes before the 101 is complete: accumulate the response head, check it, then go on as open. */
static void on_head_bytes(Conn *c, const uint8_t *b, size_t n) {
  const char *h;
  size_t hlen, used;
  const char *e;
  if (c->head_len == 0 && (e = memmem(b, n, "\r\n\r\n", 4)) != NULL) {
    h = (const char *)b; // the whole head in this read: no copy
    hlen = (size_t)(e - h);
    used = hlen + 4;
  } else {
    size_t before = c->head_len;
    if (c->head_len + n > c->head_cap) {
      c->head_cap = (c->head_len + n) * 2;
      c->head = realloc(c->head, c->head_cap);
      if (!c->head) die("out of memory");
    }
    memcpy(c->head + c->head_len, b, n);
    c->head_len += n;
    size_t from = before >= 3 ? before - 3 : 0;
    e = memmem(c->head + from, c->head_len - from, "\r\n\r\n", 4);
    if (!e) {
      if (c->head_len > HEAD_MAX) conn_ended(c, "response head too long");
      return;
    }
    h = c->head;
    hlen = (size_t)(e - h);
    used = hlen + 4 - before;
  }
  if (hlen < 12 || memcmp(h, "HTTP/1.1 101", 12) || !memmem(h, hlen, ACCEPT, sizeof ACCEPT - 1)) {
    const char *eol = memmem(h, hlen, "\r\n", 2);
    size_t l1 = eol ? (size_t)(eol - h) : hlen;
    char why[200];
    snprintf(why, sizeof why, "bad handshake response: %.*s", (int)(l1 < 150 ? l1 : 150), h);
    conn_ended(c, why);
    return;
  }
  free(c->head);
  c->head = NULL;
  c->head_len = c->head_cap = 0;
  c->state = ST_OPEN;
  uint32_t gen = c->gen;
  on_open(c);
  if (c->gen == gen && used < n) on_frames(c, b, used, n);
}

/** Readable (edge-triggered): read until a short read; to the end when the peer closed or erred. */
static void on_readable(Conn *c, bool to_end) {
  uint32_t gen = c->gen;
  for (;;) {
    ssize_t n = read(c->fd, rbuf, sizeof rbuf);
    if (n > 0) {
      if (c->state == ST_OPEN) on_frames(c, rbuf, 0, (size_t)n);
      else on_head_bytes(c, rbuf, (size_t)n);
      if (c->gen != gen) return;
      if ((size_t)n < sizeof rbuf && !to_end) return;
      continue;
    }
    if (n == 0) {
      conn_ended(c, "closed before 101");
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) conn_ended(c, strerror(errno));
    return;
  }
}

/** A handshakes slot is free again: a new connection takes it after this batch of events. */
static void release_slot(Conn *c) {
  free_slots[nfree++] = (int)(c - conns);
  if (running) restart_pending++;
}

/** The connection closed or failed. `why` matters only before the 101 (a failure). */
static void conn_ended(Conn *c, const char *why) {
  bool was_open = c->state == ST_OPEN;
  conn_close(c);
  if (opt.kind == K_HANDSHAKES) {
    if (!was_open) {
      failures++;
      if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", why);
    }
    release_slot(c);
    return;
  }
  if (!was_open) die("connection %ld of %ld failed: %s", started, opt.kind == K_LATENCY ? 1L : opt.conns, why);
  if (opt.kind == K_LATENCY) die("connection lost during latency run");
  if (running) lost++;
}

// ---- scenarios -------------------------------------------------------------------------------
/** openMany: start the next connection (at most OPEN_CONCURRENCY handshakes at a time; hold: concurrency). */
static void open_next(void) {
  long n = opt.kind == K_LATENCY ? 1 : opt.conns;
  if (started >= n) return;
  int e = conn_start((int)started);
  started++;
  if (e) die("connection %ld of %ld failed: connect: %s", started, n, strerror(e));
}

static void broadcast_pump(void) {
  uint64_t k = complete + (uint64_t)opt.window - sent;
  if (k > 0 && running && sender && sender->state == ST_OPEN) {
    sent += k;
    send_frames(sender, k);
  }
}

static void on_open(Conn *c) {
  if (opt.kind == K_HANDSHAKES) {
    total++;
    c->raw = CLOSE_FRAME;
    c->raw_len = sizeof CLOSE_FRAME;
    if (!conn_flush(c)) conn_ended(c, strerror(errno));
    return;
  }
  opened++;
  if (opt.kind == K_HOLD) total++; // what hold measures: handshakes completed, connections kept
  if (opened == (opt.kind == K_LATENCY ? 1 : opt.conns)) all_open = true;
  else open_next();
}

static void on_messages(Conn *c, uint64_t k) {
  switch (opt.kind) {
  case K_ECHO:
    total += k;
    if (running) send_frames(c, k); // every message received is replaced at once, one write per read
    break;
  case K_BROADCAST: {
    total += k;
    const uint64_t W = (uint64_t)opt.window;
    for (uint64_t m = c->recv - k; m < c->recv; m++) ring[m % W]++;
    bool advanced = false;
    while (ring[complete % W] == opt.conns) {
      ring[complete % W] = 0;
      complete++;
      advanced = true;
    }
    if (advanced) broadcast_pump();
    break;
  }
  case K_LATENCY: {
    int64_t t = now_ns();
    if (!lat_warm) samples[nsamples++] = t - lat_t0;
    else if (t >= lat_warm_end) lat_warm = false; // recording starts with the next round trip
    if (nsamples < opt.count) {
      lat_t0 = now_ns();
      send_frames(c, 1);
    } else lat_done = true;
    break;
  }
  case K_HANDSHAKES:
  case K_HOLD: // messages are not expected; the connections only stay open
    break;
  }
}

/** The scenario's load starts once every connection is open. */
static void start_load(void) {
  if (opt.kind == K_ECHO)
    for (int i = 0; i < nslots; i++)
      if (conns[i].state == ST_OPEN) send_frames(&conns[i], (uint64_t)opt.depth);
  if (opt.kind == K_BROADCAST) {
    sender = &conns[0];
    broadcast_pump();
  }
  if (opt.kind == K_LATENCY) {
    lat_warm_end = now_ns() + opt.warm_ms * 1000000LL;
    lat_t0 = now_ns();
    send_frames(&conns[0], 1);
  }
}

static void start_handshakes(void) {
  long n = restart_pending;
  restart_pending = 0;
  for (long i = 0; i < n && running && nfree > 0; i++) {
    int slot = free_slots[--nfree];
    int e = conn_start(slot);
    if (e) { // failed at once: counted, and retried after the next batch of events
      failures++;
      if (!first_error[0]) snprintf(first_error, sizeof first_error, "connect: %s", strerror(e));
      release_slot(&conns[slot]);
    }
  }
}

// ---- CPU figures (as load.ts's measure()) ----------------------------------------------------
static long clk_tck;

static double own_cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static ssize_t read_small_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  if (n >= 0) buf[n] = 0;
  return n;
}

/** utime + stime of process `pid` in seconds, or -1. */
static double pid_cpu_seconds(long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  if (read_small_file(path, buf, sizeof buf) <= 0) return -1;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  p += 2; // field 3 (state) onwards; utime and stime are fields 14 and 15
  for (int f = 3; f < 14; f++) {
    p = strchr(p, ' ');
    if (!p) return -1;
    p++;
  }
  unsigned long long ut, st;
  if (sscanf(p, "%llu %llu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / (double)clk_tck;
}

/**
 * CPU time of the whole machine in seconds from /proc/stat: *busy (user nice system irq softirq
 * steal) and *steal, the part the hypervisor gave to other guests. Returns -1 if unreadable.
 */
static int machine_cpu_seconds(double *busy, double *steal) {
  char buf[512];
  if (read_small_file("/proc/stat", buf, sizeof buf) <= 0) return -1;
  unsigned long long v[8];
  if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
             &v[7]) != 8)
    return -1;
  *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)clk_tck;
  *steal = (double)v[7] / (double)clk_tck;
  return 0;
}

typedef struct {
  int64_t t;
  uint64_t count;
  double load, server, sys, steal; // sys < 0: /proc/stat unreadable
} Snap;

static Snap snap(void) {
  Snap s = {0};
  s.count = total;
  s.load = own_cpu_seconds();
  s.server = opt.server_pid ? pid_cpu_seconds(opt.server_pid) : -1;
  if (machine_cpu_seconds(&s.sys, &s.steal) < 0) s.sys = -1;
  s.t = now_ns();
  return s;
}

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') printf("\\%c", ch);
    else if (ch < 0x20) printf("\\u%04x", ch);
    else putchar(ch);
  }
  putchar('"');
}

static void report_rate(const Snap *a, const Snap *b) {
  double wall = (double)(b->t - a->t) / 1e9;
  double load = b->load - a->load;
  printf("{\"value\":%.3f,\"extra\":{\"loadCpu\":%ld", (double)(b->count - a->count) / wall, round_pos(load / wall * 100));
  if (a->server >= 0 && b->server >= 0) {
    double srv = b->server - a->server;
    printf(",\"serverCpu\":%ld", round_pos(srv / wall * 100));
    if (a->sys >= 0 && b->sys >= 0) {
      double other = (b->sys - a->sys - load - srv) / wall * 100;
      printf(",\"otherCpu\":%ld,\"stealCpu\":%ld", other > 0 ? round_pos(other) : 0L,
             round_pos((b->steal - a->steal) / wall * 100));
    }
  }
  if (lost) printf(",\"lostConnections\":%ld", lost);
  if (opt.kind == K_HANDSHAKES) {
    if (failures) printf(",\"failures\":%ld", failures);
    if (first_error[0]) {
      printf(",\"firstError\":");
      json_string(first_error);
    }
  }
  printf("}}\n");
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

// A latency round trip this slow (300 µs) is a stall: on loopback that is a pause of a whole
// process (in Node, mostly a young-generation collection), not the cost of a message.
#define STALL_NS 300000

static void report_latency(void) {
  long n = opt.count;
  qsort(samples, (size_t)n, sizeof samples[0], cmp_i64);
  double sum = 0;
  for (long i = 0; i < n; i++) sum += (double)samples[i];
  // pct(q) = samples[min(n - 1, ceil(q * n) - 1)] in µs, as load.ts
  double q[3] = {0.5, 0.99, 0.999}, us[3];
  for (int j = 0; j < 3; j++) {
    double x = q[j] * (double)n;
    long idx = (long)x;
    if ((double)idx < x) idx++;
    idx -= 1;
    if (idx > n - 1) idx = n - 1;
    if (idx < 0) idx = 0;
    us[j] = (double)samples[idx] / 1000;
  }
  long stalls = 0; // round trips of STALL_NS or more (as load.ts)
  while (stalls < n && samples[n - 1 - stalls] >= STALL_NS) stalls++;
  printf("{\"value\":%.3f,\"extra\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f,\"stalls\":%ld}}\n",
         us[2], us[0], us[1], us[2], (double)samples[n - 1] / 1000, sum / (double)n / 1000, stalls);
}

// ---- main loop -------------------------------------------------------------------------------
int main(int argc, char **argv) {
  parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  clk_tck = sysconf(_SC_CLK_TCK);
  if (clk_tck <= 0) clk_tck = 100;

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = rl.rlim_max = 1024;
  if (rl.rlim_cur < rl.rlim_max) { // as many descriptors as allowed
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
  }

  nslots = opt.kind == K_HANDSHAKES ? (int)opt.concurrency : opt.kind == K_LATENCY ? 1 : (int)opt.conns;
  if ((rlim_t)nslots + 16 > rl.rlim_cur)
    die("%d connections need more descriptors than the limit (%llu): raise ulimit -n", nslots,
        (unsigned long long)rl.rlim_cur);
  conns = xmalloc(sizeof *conns * (size_t)nslots);
  memset(conns, 0, sizeof *conns * (size_t)nslots);
  for (int i = 0; i < nslots; i++) conns[i].fd = -1;

  request_len = (size_t)snprintf(request, sizeof request,
                                 "GET / HTTP/1.1\r\nHost: " HOST ":%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                                 opt.port);
  if (opt.kind == K_ECHO) build_stream((size_t)opt.depth + 1);
  else if (opt.kind == K_BROADCAST) build_stream((size_t)opt.window + 1);
  else build_stream(2);
  if (opt.kind == K_BROADCAST) {
    ring = xmalloc(sizeof *ring * (size_t)opt.window);
    memset(ring, 0, sizeof *ring * (size_t)opt.window);
  }
  if (opt.kind == K_LATENCY) samples = xmalloc(sizeof *samples * (size_t)opt.count);

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1: %s", strerror(errno));

  enum { P_OPENING, P_WARM, P_MEASURE, P_GRACE, P_LATENCY } phase;
  int64_t t_start = now_ns(), deadline = 0;
  Snap s0 = {0}, s1 = {0};
  last_activity = t_start;
  if (opt.kind == K_HANDSHAKES) {
    free_slots = xmalloc(sizeof *free_slots * (size_t)nslots);
    for (int i = nslots - 1; i >= 0; i--) free_slots[nfree++] = i;
    restart_pending = nslots;
    start_handshakes();
    phase = P_WARM;
    deadline = now_ns() + opt.warm_ms * 1000000LL;
  } else {
    phase = P_OPENING;
    long n = opt.kind == K_LATENCY ? 1 : opt.conns;
    long in_flight = opt.kind == K_HOLD ? opt.concurrency : OPEN_CONCURRENCY;
    // hold measures the opening itself, from the first connect to the last 101
    if (opt.kind == K_HOLD) s0 = snap();
    for (long i = 0; i < in_flight && i < n; i++) open_next();
  }

  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    int64_t now = now_ns();
    // phase changes
    if (opt.kind == K_HOLD && all_open) {
      s1 = snap();
      break;
    }
    if (phase == P_OPENING && all_open) {
      start_load();
      now = now_ns();
      if (opt.kind == K_LATENCY) phase = P_LATENCY;
      else {
        phase = P_WARM;
        deadline = now + opt.warm_ms * 1000000LL;
      }
    }
    if (phase == P_OPENING && now - t_start > SETUP_LIMIT_NS)
      die("opening connections took over %lld s (%ld of %d open)", SETUP_LIMIT_NS / 1000000000LL, opened, nslots);
    if (phase == P_WARM && now >= deadline) {
      s0 = snap();
      phase = P_MEASURE;
      deadline = s0.t + opt.duration_ms * 1000000LL;
    }
    if (phase == P_MEASURE && now >= deadline) {
      s1 = snap();
      if (opt.kind != K_HANDSHAKES) break;
      running = false; // let the in-flight ones finish their close handshake, briefly
      restart_pending = 0;
      phase = P_GRACE;
      deadline = s1.t + GRACE_NS;
    }
    if (phase == P_GRACE) {
      int live = 0;
      for (int i = 0; i < nslots; i++) live += conns[i].state != ST_FREE;
      if (live == 0 || now >= deadline) break;
    }
    if (phase == P_LATENCY && lat_done) break;
    if (now - last_activity > IDLE_LIMIT_NS) {
      static const char *names[] = {"opening connections", "warm-up", "measuring", "closing", "latency run"};
      die("nothing happened for %lld s (%s)", IDLE_LIMIT_NS / 1000000000LL, names[phase]);
    }

    if (opt.kind == K_HANDSHAKES && restart_pending > 0) start_handshakes();
    int64_t wake = last_activity + IDLE_LIMIT_NS + 1000000;
    if ((phase == P_WARM || phase == P_MEASURE || phase == P_GRACE) && deadline < wake) wake = deadline;
    int timeout = wake <= now ? 0 : (int)((wake - now + 999999) / 1000000);
    if (restart_pending > 0) timeout = 0;
    int n = epoll_wait(ep, evs, MAX_EVENTS, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait: %s", strerror(errno));
    }
    if (n > 0) last_activity = now_ns();
    for (int i = 0; i < n; i++) {
      uint32_t slot = (uint32_t)evs[i].data.u64, gen = (uint32_t)(evs[i].data.u64 >> 32);
      uint32_t e = evs[i].events;
      Conn *c = &conns[slot];
      if (c->gen != gen || c->state == ST_FREE) continue; // closed earlier in this batch
      if (c->state == ST_CONNECTING) {
        if (!(e & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
        conn_connected(c);
        if (c->gen != gen) continue;
      } else if ((e & EPOLLOUT) && pending(c)) {
        if (!conn_flush(c)) {
          conn_ended(c, strerror(errno));
          continue;
        }
      }
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(c, (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    }
  }

  for (int i = 0; i < nslots; i++) conn_close(&conns[i]);
  if (opt.kind == K_LATENCY) report_latency();
  else {
    if (opt.kind == K_HANDSHAKES && total == 0) die("no handshake succeeded: %s", first_error);
    report_rate(&s0, &s1);
  }
  fflush(stdout);
  return 0;
}
