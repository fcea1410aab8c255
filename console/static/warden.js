// Warden console: shared helpers. No inline script anywhere (CSP
// default-src 'self'); pages load their own files after this one.
"use strict";
window.warden = {
  // csrf is the page's CSRF token, for fetch() calls that change state.
  csrf: function () {
    var m = document.querySelector('meta[name="warden-csrf"]');
    return m ? m.getAttribute("content") : "";
  },
};
