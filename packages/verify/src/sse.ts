/** One Server-Sent Event (the fields this library uses). */
export interface SseEvent {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * Incremental text/event-stream parser (WHATWG HTML, 9.2.6). Feed it decoded text chunks; it
 * calls `onEvent` for each dispatched event and `onComment` for `:` lines (heartbeats).
 */
export class SseParser {
  #buffer = '';
  #event = '';
  #data: string[] = [];
  #id: string | undefined;
  #skipLf = false;
  readonly #onEvent: (e: SseEvent) => void;
  readonly #onComment: () => void;
  readonly #maxLine: number;

  constructor(onEvent: (e: SseEvent) => void, onComment: () => void = () => {}, maxLine = 1 << 20) {
    this.#onEvent = onEvent;
    this.#onComment = onComment;
    this.#maxLine = maxLine;
  }

  push(chunk: string): void {
    let start = 0;
    if (this.#skipLf && chunk.length > 0) {
      // The previous chunk ended in \r, already taken as a line end: a \n opening this one is its
      // second half, not an empty line.
      this.#skipLf = false;
      if (chunk.startsWith('\n')) start = 1;
    }
    this.#buffer += start === 0 ? chunk : chunk.slice(start);
    start = 0;
    for (;;) {
      const nl = this.#nextBreak(start);
      if (nl < 0) break;
      const line = this.#buffer.slice(start, nl);
      if (this.#buffer[nl] === '\r') {
        if (nl + 1 === this.#buffer.length) {
          // A lone \r ends the line now (no waiting for the next chunk); a \n may follow later.
          this.#skipLf = true;
          start = nl + 1;
        } else {
          start = this.#buffer[nl + 1] === '\n' ? nl + 2 : nl + 1;
        }
      } else {
        start = nl + 1;
      }
      this.#line(line);
    }
    this.#buffer = this.#buffer.slice(start);
    if (this.#buffer.length > this.#maxLine) throw new Error('event-stream line too long');
  }

  #nextBreak(from: number): number {
    const n = this.#buffer.indexOf('\n', from);
    const r = this.#buffer.indexOf('\r', from);
    if (r < 0) return n;
    if (n < 0) return r;
    return Math.min(n, r);
  }

  #line(line: string): void {
    if (line === '') {
      this.#dispatch();
      return;
    }
    if (line.startsWith(':')) {
      this.#onComment();
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#event = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.#id = value;
  }

  #dispatch(): void {
    const event = this.#event || 'message';
    const hadData = this.#data.length > 0;
    const data = this.#data.join('\n');
    this.#event = '';
    this.#data = [];
    if (hadData || event !== 'message') this.#onEvent({ event, data, id: this.#id });
  }
}
