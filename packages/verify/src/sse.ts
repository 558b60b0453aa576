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
  readonly #onEvent: (e: SseEvent) => void;
  readonly #onComment: () => void;
  readonly #maxLine: number;

  constructor(onEvent: (e: SseEvent) => void, onComment: () => void = () => {}, maxLine = 1 << 20) {
    this.#onEvent = onEvent;
    this.#onComment = onComment;
    this.#maxLine = maxLine;
  }

  push(chunk: string): void {
    this.#buffer += chunk;
    let start = 0;
    for (;;) {
      const nl = this.#nextBreak(start);
      if (nl < 0) break;
      // A trailing \r may be the first half of \r\n: wait for more input.
      if (this.#buffer[nl] === '\r' && nl + 1 === this.#buffer.length) break;
      const line = this.#buffer.slice(start, nl);
      start = this.#buffer[nl] === '\r' && this.#buffer[nl + 1] === '\n' ? nl + 2 : nl + 1;
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
