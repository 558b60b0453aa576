// A browser for the provider sign-in suites, driven by plain HTTP: a cookie jar per host name
// (cookies ignore ports, not hosts), redirects followed by hand, forms posted like a page would.

export class Browser {
  private readonly jars = new Map<string, Map<string, string>>();

  /** The cookies this browser holds for `host` (a host name, or any URL on it). */
  cookies(host = '127.0.0.1'): Map<string, string> {
    const name = host.includes('://') ? new URL(host).hostname : host;
    let jar = this.jars.get(name);
    if (!jar) {
      jar = new Map();
      this.jars.set(name, jar);
    }
    return jar;
  }

  /** The cookies of 127.0.0.1, where the account server under test runs. */
  get jar(): Map<string, string> {
    return this.cookies();
  }

  cookieHeader(host = '127.0.0.1'): string {
    return [...this.cookies(host)].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(
    url: string,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ) {
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: { cookie: this.cookieHeader(url), ...init.headers },
      body: init.body,
    });
    const jar = this.cookies(url);
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1);
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  }

  get(url: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.request(url, { headers });
  }

  /** A JSON POST from a page of `url`'s own origin. */
  postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
    return this.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: new URL(url).origin, ...headers },
      body: JSON.stringify(body),
    });
  }

  /** A form POST from a page of `url`'s own origin. */
  postForm(url: string, fields: Record<string, string>): Promise<Response> {
    return this.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(url).origin },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /** Follows the redirects of `first` (or of a GET of a URL) until `stop` says so or a page answers. */
  async follow(
    start: string | { res: Response; url: string },
    stop: (u: URL) => boolean = () => false,
  ): Promise<{ res: Response; url: string; text: string }> {
    let current = typeof start === 'string' ? start : start.url;
    let res = typeof start === 'string' ? await this.get(current) : start.res;
    for (let i = 0; i < 20; i++) {
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location)
        return { res, url: current, text: await res.text() };
      await res.arrayBuffer();
      current = new URL(location, current).href;
      if (stop(new URL(current))) return { res, url: current, text: '' };
      res = await this.get(current);
    }
    throw new Error('too many redirects');
  }
}

/** The stable error code a failure page names. */
export function errorCode(html: string): string | undefined {
  return /data-code="([a-z_]+)"/.exec(html)?.[1];
}
