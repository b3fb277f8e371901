/* The live log view shared by the log pages and the group page's run panel (window.smLogs):
 * one Socket.IO connection a page (namespace /logs), a LogView per watched run, an ANSI colour
 * converter that never interprets markup (text goes in with textContent only), and small helpers
 * (confirm dialog, downloads of POSTed exports). Needs app.js; uses socket.io.min.js when it is
 * there and falls back to reading the log over the JSON API when it is not. */
(function () {
  "use strict";

  const sm = window.sm;
  const t = sm.t;
  const el = sm.el;
  const STREAMS = ["stdout", "stderr", "debug"];
  const TAIL = 1000; // lines loaded first, and per "load earlier"
  const MAX_SHOWN = 5000; // lines kept in the page while following a live run
  const POLL_MS = 1000; // reading over the API while the socket is down
  const NEAR_BOTTOM = 24; // pixels: closer than this to the end counts as "at the end"

  // ---- ANSI colours -------------------------------------------------------------------------
  // CSI sequences (colours and cursor moves), OSC titles and links, other two-byte escapes.
  // eslint-disable-next-line no-control-regex
  const ESCAPES = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;

  function plainStyle() {
    return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
  }

  /** Apply one SGR sequence ("1;31", "0", "") to `style`. */
  function applySgr(style, params) {
    const codes = params === "" ? [0] : params.split(";").map((p) => (p === "" ? 0 : parseInt(p, 10)));
    for (let i = 0; i < codes.length; i += 1) {
      const code = codes[i];
      if (code === 0) Object.assign(style, plainStyle());
      else if (code === 1) style.bold = true;
      else if (code === 2) style.dim = true;
      else if (code === 3) style.italic = true;
      else if (code === 4) style.underline = true;
      else if (code === 22) {
        style.bold = false;
        style.dim = false;
      } else if (code === 23) style.italic = false;
      else if (code === 24) style.underline = false;
      else if (code >= 30 && code <= 37) style.fg = code - 30;
      else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
      else if (code === 39) style.fg = null;
      else if (code >= 40 && code <= 47) style.bg = code - 40;
      else if (code >= 100 && code <= 107) style.bg = code - 100 + 8;
      else if (code === 49) style.bg = null;
      else if (code === 38 || code === 48) {
        // 256 colours (5;n) keep the 16 basic ones; true colour (2;r;g;b) is skipped.
        const target = code === 38 ? "fg" : "bg";
        if (codes[i + 1] === 5) {
          const n = codes[i + 2];
          if (n >= 0 && n < 16) style[target] = n;
          i += 2;
        } else if (codes[i + 1] === 2) i += 4;
      }
    }
  }

  function classesOf(style) {
    const names = [];
    if (style.fg !== null) names.push(`sm-fg-${style.fg}`);
    if (style.bg !== null) names.push(`sm-bg-${style.bg}`);
    if (style.bold) names.push("sm-bold");
    if (style.dim) names.push("sm-dim");
    if (style.italic) names.push("sm-italic");
    if (style.underline) names.push("sm-underline");
    return names;
  }

  /**
   * A line of terminal output as [{text, classes}]: SGR colours become classes, every other
   * escape is dropped, and a carriage return keeps what was printed after it (progress bars).
   */
  function ansiSegments(line) {
    let text = String(line);
    if (text.endsWith("\r")) text = text.replace(/\r+$/, "");
    const cr = text.lastIndexOf("\r");
    if (cr >= 0) text = text.slice(cr + 1);
    const segments = [];
    const style = plainStyle();
    let last = 0;
    function push(part) {
      if (part) segments.push({ text: part, classes: classesOf(style) });
    }
    ESCAPES.lastIndex = 0;
    let match;
    while ((match = ESCAPES.exec(text)) !== null) {
      push(text.slice(last, match.index));
      if (match[2] === "m") applySgr(style, match[1].replace(/\?/g, ""));
      last = ESCAPES.lastIndex;
    }
    push(text.slice(last));
    return segments;
  }

  /** The line as DOM nodes: text nodes and spans filled with textContent, nothing parsed. */
  function ansiFragment(line) {
    const fragment = document.createDocumentFragment();
    ansiSegments(line).forEach((segment) => {
      if (!segment.classes.length) {
        fragment.append(document.createTextNode(segment.text));
        return;
      }
      const span = document.createElement("span");
      span.className = segment.classes.join(" ");
      span.textContent = segment.text;
      fragment.append(span);
    });
    return fragment;
  }

  // ---- the socket ---------------------------------------------------------------------------
  const views = new Map(); // execution id -> LogView
  const statusListeners = [];
  let socket = null;
  let userRoom = false;

  /** The page's /logs connection (made on first use), or null without the Socket.IO client. */
  function connection() {
    if (socket || typeof window.io !== "function") return socket;
    socket = window.io("/logs", { path: `${sm.rootPath()}/socket.io` });
    socket.on("connect", () => {
      if (userRoom) socket.emit("join_user", {});
      views.forEach((view) => view.join());
    });
    socket.on("disconnect", () => views.forEach((view) => view.setConnection("reconnecting")));
    socket.on("connect_error", () => views.forEach((view) => view.setConnection("reconnecting")));
    socket.on("lines", (data) => {
      const view = data && views.get(data.execution_id);
      if (view) view.receive(data.lines || []);
    });
    socket.on("status", (data) => {
      if (!data) return;
      const view = views.get(data.execution_id);
      if (view) view.statusChanged(data.status, data.exit_code);
      statusListeners.forEach((listener) => listener(data));
    });
    socket.on("viewers", (data) => {
      const view = data && views.get(data.execution_id);
      if (view) view.setViewers(data.count);
    });
    socket.on("error", (data) => {
      const view = data && views.get(data.execution_id);
      if (view) view.showError(data.message || t("common.error"));
    });
    return socket;
  }

  /** Call `listener({execution_id, status, exit_code})` whenever one of my runs changes state. */
  function onMyStatus(listener) {
    statusListeners.push(listener);
    userRoom = true;
    const live = connection();
    if (live && live.connected) live.emit("join_user", {});
    return live !== null;
  }

  // ---- one run's log ------------------------------------------------------------------------
  function pad(n, width) {
    return String(n).padStart(width || 2, "0");
  }

  function clock(iso) {
    const date = iso ? new Date(iso) : null;
    if (!date || Number.isNaN(date.getTime())) return "";
    return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
  }

  function apiUrl(executionId, query) {
    return `/api/logs/execution/${encodeURIComponent(executionId)}?${new URLSearchParams(query)}`;
  }

  /**
   * A run's log on the page: the last lines first (tail), earlier ones on demand, live lines over
   * Socket.IO while it runs (no gap, no repeat: lines are kept in seq order, one seq once).
   *
   * options: executionId; host (an element the view builds its toolbar and lines in) or output
   * (an element that receives the lines only: the group page's run panel); live; startTime;
   * streams; picker (stream checkboxes in the toolbar); times; onStatus(status, exitCode);
   * onViewers(count).
   */
  class LogView {
    constructor(options) {
      this.options = options;
      this.id = options.executionId;
      this.live = Boolean(options.live);
      this.status = options.status || null;
      this.streams = (options.streams || STREAMS).slice();
      this.follow = true;
      this.firstSeq = null;
      this.lastSeq = 0;
      this.shown = 0;
      this.loading = false;
      this.started = false;
      this.generation = 0;
      this.build();
    }

    // -- layout
    build() {
      const o = this.options;
      if (o.output) {
        this.lines = o.output;
        this.lines.classList.add("sm-log-compact");
        this.root = o.output;
      } else {
        this.lines = el("div", { class: "sm-log", role: "log", "aria-live": "off", tabindex: "0",
          "aria-label": t("logs.output_label"), dataset: { sm: "log-lines" } });
        this.earlier = el("button", { type: "button", class: "btn btn-sm btn-link sm-log-earlier d-none",
          dataset: { sm: "log-earlier" } }, sm.icon("arrow-up"), " ", t("logs.load_earlier"));
        this.earlier.addEventListener("click", () => this.loadEarlier());
        this.empty = el("p", { class: "small text-body-secondary mb-0 px-2 py-3 d-none", dataset: { sm: "log-empty" } });
        this.error = el("div", { class: "alert alert-warning small py-1 px-2 mb-2 d-none", role: "status",
          dataset: { sm: "log-error" } });
        this.root = el("div", { class: "sm-logview", dataset: { sm: "log-view", executionId: this.id } },
          this.toolbar(), this.error,
          el("div", { class: "sm-log-frame" }, this.earlier, this.lines, this.empty));
        o.host.replaceChildren(this.root);
      }
      this.lines.classList.toggle("sm-log-times", o.times !== false && !o.output);
      this.lines.addEventListener("scroll", () => this.scrolled(), { passive: true });
    }

    toolbar() {
      const bar = el("div", { class: "sm-logview-bar d-flex flex-wrap align-items-center gap-2 gap-md-3 small mb-2" });
      this.picker = el("fieldset", { class: "d-flex flex-wrap align-items-center gap-2 sm-stream-picker", dataset: { sm: "stream-picker" } },
        el("legend", { class: "visually-hidden" }, t("logs.streams")));
      STREAMS.forEach((stream) => {
        const id = `sm-stream-${this.id}-${stream}`;
        const box = el("input", { class: "form-check-input", type: "checkbox", id, value: stream,
          dataset: { sm: `stream-${stream}` } });
        box.checked = this.streams.includes(stream);
        box.addEventListener("change", () => {
          const chosen = STREAMS.filter((s) => this.picker.querySelector(`input[value="${s}"]`).checked);
          if (!chosen.length) {
            box.checked = true; // at least one stream
            return;
          }
          this.setStreams(chosen);
        });
        this.picker.append(el("div", { class: "form-check form-check-inline m-0" }, box,
          el("label", { class: `form-check-label sm-stream-label sm-stream-${stream}`, for: id }, t(`logs.stream_${stream}`))));
      });
      this.picker.classList.toggle("d-none", !this.options.picker);

      const timesId = `sm-times-${this.id}`;
      const times = el("input", { class: "form-check-input", type: "checkbox", role: "switch", id: timesId,
        dataset: { sm: "log-times" } });
      times.checked = this.options.times !== false;
      times.addEventListener("change", () => this.lines.classList.toggle("sm-log-times", times.checked));

      this.followButton = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", dataset: { sm: "log-follow" },
        "aria-pressed": "true" });
      this.followButton.addEventListener("click", () => this.setFollow(!this.follow));

      this.progress = el("span", { class: "d-inline-flex align-items-center gap-2 text-body-secondary", dataset: { sm: "log-progress" },
        "aria-live": "off" },
      el("span", { class: "spinner-border spinner-border-sm d-none", role: "status", dataset: { sm: "log-spinner" } },
        el("span", { class: "visually-hidden" }, t("logs.live"))),
      el("span", { dataset: { sm: "log-count" } }),
      el("span", { dataset: { sm: "log-elapsed" } }));
      this.connectionNote = el("span", { class: "badge text-bg-warning d-none", dataset: { sm: "log-connection" } });

      bar.append(this.picker,
        el("div", { class: "form-check form-switch m-0" }, times, el("label", { class: "form-check-label", for: timesId }, t("logs.show_times"))),
        this.followButton, this.progress, this.connectionNote);
      this.updateFollowButton();
      return bar;
    }

    // -- lifecycle
    /** Load the last lines, then follow the run live while it runs. */
    async start() {
      this.started = true;
      views.set(this.id, this);
      const generation = ++this.generation;
      this.clear();
      this.loading = true;
      const result = await sm.fetch(apiUrl(this.id, { tail: TAIL, streams: this.streams.join(",") }));
      this.loading = false;
      if (generation !== this.generation) return; // the streams changed meanwhile
      if (!result.ok) {
        this.showError(sm.errorMessage(result));
        return;
      }
      const lines = result.data.lines || [];
      this.append(lines);
      if (!lines.length) this.lastSeq = Math.max(this.lastSeq, result.data.last_seq || 0);
      this.setEarlier(lines.length >= TAIL && this.firstSeq > 1);
      this.statusChanged(result.data.status, result.data.exit_code);
      if (result.data.viewers !== null && result.data.viewers !== undefined) this.setViewers(result.data.viewers);
      if (this.live) this.join();
      this.updateProgress();
    }

    /** Stop following: leave the run's room, stop the clocks. */
    stop() {
      this.started = false;
      this.generation += 1;
      if (views.get(this.id) === this) views.delete(this.id);
      if (socket && socket.connected) socket.emit("leave", { execution_id: this.id });
      this.stopTimers();
    }

    stopTimers() {
      if (this.pollTimer) clearInterval(this.pollTimer);
      if (this.clockTimer) clearInterval(this.clockTimer);
      this.pollTimer = null;
      this.clockTimer = null;
    }

    /** (Re)enter the run's room, saying which line we have: the server sends the rest. */
    join() {
      if (!this.started || !this.live || this.loading) return;
      const live = connection();
      if (live && live.connected) {
        live.emit("join", { execution_id: this.id, last_seq: this.lastSeq, streams: this.streams });
        this.setConnection("live");
      } else {
        this.setConnection(live ? "reconnecting" : "polling");
      }
      if (!this.pollTimer) this.pollTimer = setInterval(() => this.poll(), POLL_MS);
      if (!this.clockTimer) this.clockTimer = setInterval(() => this.updateProgress(), 1000);
    }

    /** Read new lines over the API, only while the socket is not there. */
    async poll() {
      if (!this.live || this.polling || (socket && socket.connected)) return;
      this.polling = true;
      const generation = this.generation;
      const result = await sm.fetch(apiUrl(this.id, { after_seq: this.lastSeq, limit: TAIL, streams: this.streams.join(",") }));
      this.polling = false;
      if (generation !== this.generation || !result.ok) return;
      this.append(result.data.lines || []);
      this.statusChanged(result.data.status, result.data.exit_code);
    }

    /**
     * Leave the run's room; resolves once the server has done it (its acknowledgement comes
     * after every message of the old room), so a join that follows cannot overtake it.
     */
    leaveRoom() {
      return new Promise((resolve) => {
        if (!socket || !socket.connected) {
          resolve();
          return;
        }
        const timer = setTimeout(resolve, 2000);
        socket.emit("leave", { execution_id: this.id }, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }

    /** Follow other streams: leave the room, load again, join with the new streams. */
    async setStreams(streams, picker) {
      if (picker !== undefined && this.picker) this.picker.classList.toggle("d-none", !picker);
      if (this.picker) {
        this.picker.querySelectorAll("input").forEach((box) => {
          box.checked = streams.includes(box.value);
        });
      }
      if (streams.join(",") === this.streams.join(",") && this.started) return;
      this.streams = streams.slice();
      const generation = ++this.generation;
      this.stopTimers();
      this.loading = true; // lines of the old room are not ours any more
      if (this.started) await this.leaveRoom();
      if (generation === this.generation) this.start();
    }

    // -- lines
    clear() {
      this.lines.replaceChildren();
      this.firstSeq = null;
      this.lastSeq = 0;
      this.shown = 0;
      this.setEarlier(false);
      this.updateProgress();
    }

    /** A line from the API ({seq, ts, stream, text}) or a socket message ([seq, ts, stream, text]). */
    static parts(line) {
      return Array.isArray(line) ? line : [line.seq, line.ts, line.stream, line.text];
    }

    lineNode(seq, ts, stream, text) {
      const node = el("span", { class: `sm-log-line sm-log-${stream}`, dataset: { seq: String(seq), stream } });
      const stamp = el("span", { class: "sm-log-ts", "aria-hidden": "true" });
      stamp.textContent = clock(ts);
      const body = el("span", { class: "sm-log-text" });
      body.append(ansiFragment(text));
      node.append(stamp, body);
      return node;
    }

    /** Lines from the socket: dropped while the tail loads (the join starts where it ends). */
    receive(lines) {
      if (this.loading) return;
      this.append(lines);
    }

    /** Add lines at the end, in order, each seq once, only of the streams followed. */
    append(lines) {
      const fragment = document.createDocumentFragment();
      let added = 0;
      lines.forEach((line) => {
        const [seq, ts, stream, text] = LogView.parts(line);
        // A message of the room just left may still arrive: other streams are not ours.
        if (seq <= this.lastSeq || !this.streams.includes(stream)) return;
        this.lastSeq = seq;
        if (this.firstSeq === null) this.firstSeq = seq;
        fragment.append(this.lineNode(seq, ts, stream, text));
        added += 1;
      });
      if (!added) return;
      this.lines.append(fragment);
      this.shown += added;
      if (this.options.output) this.lines.hidden = false;
      this.trim();
      this.updateProgress();
      if (this.follow) this.toBottom();
    }

    /** Keep the page light on a long run: drop the oldest lines (they can be loaded again). */
    trim() {
      const limit = this.follow ? MAX_SHOWN : MAX_SHOWN * 2;
      if (this.shown <= limit) return;
      let extra = this.shown - limit;
      while (extra > 0 && this.lines.firstChild) {
        this.lines.firstChild.remove();
        extra -= 1;
        this.shown -= 1;
      }
      const first = this.lines.firstChild;
      this.firstSeq = first ? parseInt(first.dataset.seq, 10) : null;
      this.setEarlier(true);
    }

    setEarlier(shown) {
      if (this.earlier) this.earlier.classList.toggle("d-none", !shown);
    }

    /** Load the lines before the first one shown (a window of TAIL line numbers). */
    async loadEarlier() {
      if (!this.firstSeq || this.firstSeq <= 1) return;
      const after = Math.max(0, this.firstSeq - 1 - TAIL);
      const before = this.firstSeq;
      sm.setBusy(this.earlier, true);
      const result = await sm.fetch(apiUrl(this.id, { after_seq: after, limit: TAIL, streams: this.streams.join(",") }));
      sm.setBusy(this.earlier, false);
      if (!result.ok) {
        this.showError(sm.errorMessage(result));
        return;
      }
      const fragment = document.createDocumentFragment();
      let added = 0;
      (result.data.lines || []).forEach((line) => {
        const [seq, ts, stream, text] = LogView.parts(line);
        if (seq >= before) return;
        fragment.append(this.lineNode(seq, ts, stream, text));
        added += 1;
      });
      const height = this.lines.scrollHeight;
      this.lines.prepend(fragment);
      this.lines.scrollTop += this.lines.scrollHeight - height; // the reader's line stays put
      this.shown += added;
      this.firstSeq = after + 1;
      const first = this.lines.firstChild;
      if (first) this.firstSeq = Math.min(this.firstSeq, parseInt(first.dataset.seq, 10));
      this.setEarlier(after > 0);
      this.updateProgress();
    }

    // -- scrolling
    toBottom() {
      this.programmatic = true;
      this.lines.scrollTop = this.lines.scrollHeight;
      requestAnimationFrame(() => {
        this.programmatic = false;
      });
    }

    scrolled() {
      if (this.programmatic) return;
      const box = this.lines;
      const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM;
      if (!atBottom && this.follow) this.setFollow(false);
      else if (atBottom && !this.follow && this.live) this.setFollow(true);
    }

    setFollow(follow) {
      this.follow = follow;
      if (follow) this.toBottom();
      this.updateFollowButton();
    }

    updateFollowButton() {
      const button = this.followButton;
      if (!button) return;
      button.replaceChildren(sm.icon(this.follow ? "pause-fill" : "play-fill"), " ",
        t(this.follow ? "logs.pause" : "logs.resume"));
      button.setAttribute("aria-pressed", this.follow ? "true" : "false");
      button.title = t(this.follow ? "logs.pause_hint" : "logs.resume_hint");
    }

    // -- state shown around the lines
    statusChanged(status, exitCode) {
      if (!status) return;
      const wasLive = this.live;
      const changed = status !== this.status;
      this.live = sm.isLive(status);
      this.status = status;
      if (wasLive && !this.live) {
        this.stopTimers();
        this.setConnection(null);
      }
      this.updateProgress();
      if (changed && this.options.onStatus) this.options.onStatus(status, exitCode);
    }

    setViewers(count) {
      this.viewers = count;
      if (this.options.onViewers) this.options.onViewers(count);
    }

    setConnection(state) {
      const note = this.connectionNote;
      if (!note) return;
      const labels = { reconnecting: "logs.reconnecting", polling: "logs.polling" };
      note.classList.toggle("d-none", !labels[state]);
      note.textContent = labels[state] ? t(labels[state]) : "";
    }

    showError(message) {
      if (!this.error) {
        sm.notify(message, "warning");
        return;
      }
      this.error.textContent = message;
      this.error.classList.remove("d-none");
    }

    updateProgress() {
      // A live run gets a steady box (no jumps as lines arrive) and the follow button.
      if (this.root !== this.lines) this.root.classList.toggle("sm-logview-live", this.live);
      if (this.followButton) this.followButton.classList.toggle("d-none", !this.live);
      if (this.empty) {
        const none = this.shown === 0 && !this.loading;
        this.empty.classList.toggle("d-none", !none);
        this.empty.textContent = t(this.live ? "logs.waiting_output" : "logs.no_lines");
      }
      if (!this.progress) return;
      this.progress.querySelector('[data-sm="log-spinner"]').classList.toggle("d-none", !this.live);
      this.progress.querySelector('[data-sm="log-count"]').textContent = t("logs.line_count", { count: this.lastSeq });
      const elapsed = this.live ? sm.secondsSince(this.options.startTime) : null;
      this.progress.querySelector('[data-sm="log-elapsed"]').textContent =
        elapsed === null ? "" : t("logs.elapsed", { duration: sm.formatDuration(elapsed) });
    }
  }

  // ---- small shared helpers -----------------------------------------------------------------
  /** A Bootstrap confirm dialog; resolves true when the person confirms. */
  function confirmDialog(message, action, kind) {
    return new Promise((resolve) => {
      const confirmButton = el("button", { type: "button", class: `btn btn-${kind || "danger"}`, dataset: { sm: "confirm-ok" } }, action);
      const modal = el("div", { class: "modal fade", tabindex: "-1", "aria-hidden": "true", dataset: { sm: "confirm-dialog" } },
        el("div", { class: "modal-dialog" },
          el("div", { class: "modal-content" },
            el("div", { class: "modal-body" }, el("p", { class: "mb-0" }, message)),
            el("div", { class: "modal-footer" },
              el("button", { type: "button", class: "btn btn-outline-secondary", "data-bs-dismiss": "modal" }, t("common.cancel")),
              confirmButton))));
      document.body.append(modal);
      let answer = false;
      const dialog = new window.bootstrap.Modal(modal);
      confirmButton.addEventListener("click", () => {
        answer = true;
        dialog.hide();
      });
      modal.addEventListener("hidden.bs.modal", () => {
        dialog.dispose();
        modal.remove();
        resolve(answer);
      });
      dialog.show();
    });
  }

  /** POST `body` as JSON and save the answer as a file (the bulk and admin exports). */
  async function downloadPost(url, body, fallbackName) {
    const meta = document.querySelector('meta[name="csrf-token"]');
    let response;
    try {
      response = await fetch(sm.rootPath() + url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": meta ? meta.content : "" },
        body: JSON.stringify(body),
      });
    } catch (err) {
      sm.notify(t("common.network_error"), "danger");
      return false;
    }
    if (!response.ok) {
      let message = `${t("common.error")} (HTTP ${response.status})`;
      try {
        const data = await response.json();
        message = data.message || message;
      } catch (err) {
        /* not JSON: keep the generic message */
      }
      sm.notify(message, "danger");
      return false;
    }
    const disposition = response.headers.get("Content-Disposition") || "";
    const named = /filename="([^"]+)"/.exec(disposition);
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: named ? named[1] : fallbackName });
    document.body.append(link);
    link.click();
    setTimeout(() => {
      URL.revokeObjectURL(link.href);
      link.remove();
    }, 1000);
    return true;
  }

  // ---- the "Live" count in the log pages' navigation ------------------------------------------
  async function countLive() {
    const badge = document.querySelector('[data-sm="live-count"]');
    if (!badge) return;
    const result = await sm.fetch("/api/logs/execution?status=starting,running,stopping&per_page=1");
    if (!result.ok) return;
    badge.textContent = String(result.data.total);
    badge.classList.toggle("d-none", !result.data.total);
    badge.title = t("logs.running_n", { count: result.data.total });
  }

  function startPage() {
    // Choices that apply at once (the statistics period, the system log file).
    document.querySelectorAll("select[data-sm-autosubmit]").forEach((select) => {
      select.addEventListener("change", () => select.form.requestSubmit());
    });
    if (!document.querySelector('[data-sm="live-count"]')) return;
    countLive();
    let timer = null;
    onMyStatus(() => {
      clearTimeout(timer);
      timer = setTimeout(countLive, 300);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startPage);
  else startPage();

  window.smLogs = { STREAMS, LogView, ansiSegments, ansiFragment, onMyStatus, connection, confirmDialog, downloadPost };
})();
