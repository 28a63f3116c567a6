/* eloity-admin: small courtesies, no dependencies, no CDN.
   Copy buttons: <button class="copy-id" data-copy="full value">. Works without this file
   too: the full id is in the button's title and aria-label. */
(function () {
  "use strict";

  /* Times are shown in the browser's time zone: the server reads it from this cookie
     (StaffTimeZoneMiddleware); until it is set, pages use the site's zone. */
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("eloity_tz=" + encodeURIComponent(zone)) === -1) {
      document.cookie = "eloity_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax" +
        (window.location.protocol === "https:" ? "; secure" : "");
    }
  } catch (e) { /* no Intl: the site's zone it is */ }

  function announce(button, text) {
    var label = button.querySelector(".copy-id-text");
    if (!label) { return; }
    var before = label.getAttribute("data-label") || label.textContent;
    label.setAttribute("data-label", before);
    label.textContent = text;
    button.setAttribute("data-copied", text === "copied" ? "yes" : "no");
    window.setTimeout(function () { label.textContent = before; }, 1500);
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.copy-id") : null;
    if (!button) { return; }
    event.preventDefault();
    var text = button.getAttribute("data-copy") || "";
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { announce(button, "copied"); },
        function () { announce(button, fallbackCopy(text) ? "copied" : "select and copy"); }
      );
    } else {
      announce(button, fallbackCopy(text) ? "copied" : "select and copy");
    }
  });
})();
