package embedch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// tarball builds a gzipped tar of the given files, in order.
func tarball(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// registry serves body at every path and counts requests.
func registry(t *testing.T, body []byte) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func synthetic(body []byte) artifact {
	return artifact{version: "test", urlPath: "/pkg/-/pkg-test.tgz", sha256: sha(body), size: int64(len(body)), member: "package/libchdb.so"}
}

func TestFetchExtractsLibraryAndCaches(t *testing.T) {
	body := tarball(t, [2]string{"package/index.js", "module.exports = 1"}, [2]string{"package/libchdb.so", "ELF pretend engine"}, [2]string{"package/package.json", "{}"})
	srv, hits := registry(t, body)
	cache := t.TempDir()
	var progress bytes.Buffer
	o := FetchOptions{CacheDir: cache, RegistryURL: srv.URL + "/", Progress: &progress}

	lib, err := fetch(context.Background(), o, synthetic(body))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "chdb", "test", "libchdb.so"); lib != want {
		t.Fatalf("lib = %s, want %s", lib, want)
	}
	got, err := os.ReadFile(lib)
	if err != nil || string(got) != "ELF pretend engine" {
		t.Fatalf("library = %q, %v", got, err)
	}
	if fi, _ := os.Stat(lib); fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("library mode %v is not executable", fi.Mode())
	}
	if !strings.Contains(progress.String(), "downloading ClickHouse engine (chDB test, 0 MB) from "+srv.URL) {
		t.Errorf("no progress bar in %q", progress.String())
	}
	assertOnly(t, filepath.Dir(lib), "libchdb.so", markerName, lockName)

	// Cached: no second request.
	if lib2, err := fetch(context.Background(), o, synthetic(body)); err != nil || lib2 != lib {
		t.Fatalf("second fetch = %s, %v", lib2, err)
	}
	if hits.Load() != 1 {
		t.Fatalf("registry hit %d times, want 1", hits.Load())
	}
}

func TestFetchRejectsChecksumMismatch(t *testing.T) {
	body := tarball(t, [2]string{"package/libchdb.so", "tampered"})
	srv, _ := registry(t, body)
	cache := t.TempDir()
	a := synthetic(body)
	a.sha256 = strings.Repeat("ab", 32)

	_, err := fetch(context.Background(), FetchOptions{CacheDir: cache, RegistryURL: srv.URL}, a)
	if err == nil {
		t.Fatal("fetch accepted a tarball with the wrong checksum")
	}
	for _, want := range []string{"checksum mismatch", sha(body), a.sha256} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	assertOnly(t, filepath.Join(cache, "chdb", "test"), lockName)
}

func TestFetchMissingMember(t *testing.T) {
	body := tarball(t, [2]string{"package/index.js", "x"})
	srv, _ := registry(t, body)
	cache := t.TempDir()
	_, err := fetch(context.Background(), FetchOptions{CacheDir: cache, RegistryURL: srv.URL}, synthetic(body))
	if err == nil || !strings.Contains(err.Error(), "package/libchdb.so not found") {
		t.Fatalf("err = %v", err)
	}
	assertOnly(t, filepath.Join(cache, "chdb", "test"), lockName)
}

func TestFetchHTTPError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := fetch(context.Background(), FetchOptions{CacheDir: t.TempDir(), RegistryURL: srv.URL}, synthetic(nil))
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v", err)
	}
}

func TestFetchConcurrentDownloadsOnce(t *testing.T) {
	body := tarball(t, [2]string{"package/libchdb.so", strings.Repeat("engine", 1<<16)})
	srv, hits := registry(t, body)
	cache := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = fetch(context.Background(), FetchOptions{CacheDir: cache, RegistryURL: srv.URL}, synthetic(body))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if haveFlock && hits.Load() != 1 {
		t.Fatalf("registry hit %d times, want 1", hits.Load())
	}
}

func TestFetchRedownloadsWithoutMarker(t *testing.T) {
	body := tarball(t, [2]string{"package/libchdb.so", "good"})
	srv, hits := registry(t, body)
	cache := t.TempDir()
	dir := filepath.Join(cache, "chdb", "test")
	// What a fetch killed between rename and marker, or a stray copy, leaves.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"libchdb.so": "half", "download-123.tgz": "junk"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lib, err := fetch(context.Background(), FetchOptions{CacheDir: cache, RegistryURL: srv.URL}, synthetic(body))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(lib); string(got) != "good" || hits.Load() != 1 {
		t.Fatalf("library %q after %d downloads", got, hits.Load())
	}
	if haveFlock {
		assertOnly(t, dir, "libchdb.so", markerName, lockName)
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv(EnvCacheDir, "/somewhere/else")
	if d, err := DefaultCacheDir(); err != nil || d != "/somewhere/else" {
		t.Fatalf("DefaultCacheDir() = %s, %v", d, err)
	}
	t.Setenv(EnvCacheDir, "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if d, err := DefaultCacheDir(); runtime.GOOS == "linux" && (err != nil || d != "/xdg/weft") {
		t.Fatalf("DefaultCacheDir() = %s, %v", d, err)
	}
}

// assertOnly fails unless dir holds exactly the named entries.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	if len(got) != len(names) {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
	for _, g := range got {
		if !want[g] {
			t.Fatalf("%s holds %v, want %v", dir, got, names)
		}
	}
}
