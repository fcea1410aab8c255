package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestChromiumRendersAPage proves the harness drives a real browser: a
// page whose script writes the title, read back through the DOM.
func TestChromiumRendersAPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/app.js" {
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprint(w, `document.getElementById("out").textContent = "script ran " + (6*7);`)
			return
		}
		fmt.Fprint(w, `<!DOCTYPE html><p id="out">no script</p><script src="/app.js"></script>`)
	}))
	defer srv.Close()
	ctx := New(t)
	sctx, cancel := Step(ctx, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible("#out")); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.getElementById("out").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if got != "script ran 42" {
		t.Fatalf("page says %q", got)
	}
}
