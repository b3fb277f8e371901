/* A run's page: my bookmark and note on the run, and share links (/api/logs/.../mark, /shares).
 * Needs app.js. Strings come from the page's data attributes. */
(function () {
  "use strict";

  const sm = window.sm;

  function part(name) {
    return document.querySelector(`[data-sm="${name}"]`);
  }

  function setup() {
    const data = document.getElementById("sm-run");
    const box = part("run-personal");
    if (!data || !box) return;
    const run = JSON.parse(data.textContent);
    const base = `/api/logs/execution/${encodeURIComponent(run.execution_id)}`;
    const bookmark = part("run-bookmark");
    const note = part("run-note");
    const save = part("run-note-save");
    const share = part("run-share");
    const shareBox = part("share-box");
    const shareUrl = part("share-url");
    const revoke = part("share-revoke");
    let shareId = null;

    function showBookmark(on) {
      bookmark.setAttribute("aria-pressed", on ? "true" : "false");
      bookmark.classList.toggle("active", on);
      bookmark.querySelector("i").className = on ? "bi bi-bookmark-fill" : "bi bi-bookmark";
      bookmark.querySelector("span").textContent = on ? bookmark.dataset.on : bookmark.dataset.off;
    }

    async function saveMark(body, button) {
      sm.setBusy(button, true);
      const result = await sm.fetch(`${base}/mark`, { method: "PUT", body: body });
      sm.setBusy(button, false);
      if (!result.ok) {
        sm.notify(sm.errorMessage(result), "danger");
        return null;
      }
      return result.data;
    }

    bookmark.addEventListener("click", async () => {
      const mark = await saveMark({ bookmarked: bookmark.getAttribute("aria-pressed") !== "true" }, bookmark);
      if (mark) showBookmark(mark.bookmarked);
    });
    save.addEventListener("click", async () => {
      const mark = await saveMark({ note: note.value }, save);
      if (mark) {
        note.value = mark.note;
        sm.notify(box.dataset.saved, "success");
      }
    });
    share.addEventListener("click", async () => {
      sm.setBusy(share, true);
      const result = await sm.fetch(`${base}/shares`, { method: "POST", body: {} });
      sm.setBusy(share, false);
      if (!result.ok) {
        sm.notify(sm.errorMessage(result), "danger");
        return;
      }
      shareId = result.data.id;
      shareUrl.value = result.data.url;
      shareBox.hidden = false;
      shareUrl.select();
      if (navigator.clipboard) navigator.clipboard.writeText(result.data.url).catch(() => {});
      sm.notify(box.dataset.shared, "success");
    });
    revoke.addEventListener("click", async () => {
      if (shareId === null) return;
      sm.setBusy(revoke, true);
      const result = await sm.fetch(`/api/logs/shares/${shareId}`, { method: "DELETE" });
      sm.setBusy(revoke, false);
      if (!result.ok) {
        sm.notify(sm.errorMessage(result), "danger");
        return;
      }
      shareId = null;
      shareUrl.value = "";
      shareBox.hidden = true;
    });

    sm.fetch(`${base}/mark`).then((result) => {
      if (!result.ok) return;
      showBookmark(result.data.bookmarked);
      note.value = result.data.note || "";
      box.dataset.loaded = "true";
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
