package embedch

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// The pinned engine: the chDB library as the npm registry ships it.
const (
	// Version is the version of the npm package @chdb/lib-linux-x64-gnu that
	// Fetch downloads. It embeds ClickHouse 26.7.2.
	Version = "26.7.3-stable.1"
	// TarballSHA256 is the sha256 of that package's tarball.
	TarballSHA256 = "c0d32b129e988f2b9a9a31c9141aecf5e1e2453f9a079efc4d36ab8e3f92b2ad"
	// DefaultRegistryURL is the npm registry Fetch downloads from unless told otherwise.
	DefaultRegistryURL = "https://registry.npmjs.org"
	// EnvCacheDir overrides the cache directory (default os.UserCacheDir()/weft).
	EnvCacheDir = "WEFT_CACHE_DIR"
	// EnvRegistryURL overrides DefaultRegistryURL when FetchOptions.RegistryURL is empty.
	EnvRegistryURL = "WEFT_NPM_REGISTRY"
)

// FetchOptions configures Fetch. The zero value is ready to use.
type FetchOptions struct {
	// CacheDir holds the library as CacheDir/chdb/<Version>/libchdb.so.
	// Empty means DefaultCacheDir().
	CacheDir string
	// RegistryURL is the npm registry's base URL. Empty means
	// $WEFT_NPM_REGISTRY, else DefaultRegistryURL. HTTPS_PROXY is honoured.
	RegistryURL string
	// Progress, when non-nil, receives a download progress bar and notices.
	Progress io.Writer
}

// artifact is one npm tarball that carries the library; tests swap in small ones.
type artifact struct {
	version string // cache subdirectory
	urlPath string // path below the registry URL
	sha256  string // hex sha256 of the tarball
	size    int64  // expected tarball size, for the progress bar when the server gives none
	member  string // the library's path inside the tarball
}

var pinned = artifact{
	version: Version,
	urlPath: "/@chdb/lib-linux-x64-gnu/-/lib-linux-x64-gnu-" + Version + ".tgz",
	sha256:  TarballSHA256,
	size:    177_817_999,
	member:  "package/libchdb.so",
}

const (
	libName    = "libchdb.so"
	markerName = "libchdb.so.tarball-sha256" // written last: its presence means libchdb.so is verified
	lockName   = ".fetch.lock"
)

// DefaultCacheDir is $WEFT_CACHE_DIR, else os.UserCacheDir()/weft.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("embedch: no cache directory (set %s): %w", EnvCacheDir, err)
	}
	return filepath.Join(d, "weft"), nil
}

// Fetch returns the path of the pinned ClickHouse engine library, downloading
// it from the npm registry into the cache on first use. The tarball's sha256
// is checked against TarballSHA256 before anything is extracted.
//
// Concurrent calls, in one process or several, are safe: a file lock in the
// cache directory lets one download while the others wait, and every file is
// written under a temporary name and renamed into place, so a reader only
// ever sees a complete, verified library.
func Fetch(ctx context.Context, o FetchOptions) (string, error) {
	return fetch(ctx, o, pinned)
}

func fetch(ctx context.Context, o FetchOptions, a artifact) (string, error) {
	cache := o.CacheDir
	if cache == "" {
		var err error
		if cache, err = DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(cache, "chdb", a.version)
	lib := filepath.Join(dir, libName)
	if cached(dir, a) {
		return lib, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("embedch: create cache directory: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, lockName), o.Progress)
	if err != nil {
		return "", err
	}
	defer unlock()
	if cached(dir, a) { // another process fetched it while we waited
		return lib, nil
	}
	if haveFlock { // we own the directory now: drop what a killed fetch left
		for _, pat := range []string{"download-*.tgz", ".*.tmp-*"} {
			stale, _ := filepath.Glob(filepath.Join(dir, pat))
			for _, f := range stale {
				_ = os.Remove(f)
			}
		}
	}

	registry := o.RegistryURL
	if registry == "" {
		registry = os.Getenv(EnvRegistryURL)
	}
	if registry == "" {
		registry = DefaultRegistryURL
	}
	url := strings.TrimRight(registry, "/") + a.urlPath

	tgz, err := download(ctx, url, dir, a, o.Progress)
	if err != nil {
		return "", err
	}
	defer os.Remove(tgz)
	if err := extract(tgz, a.member, lib); err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, markerName), []byte(a.sha256+"\n"), 0o644); err != nil {
		return "", err
	}
	return lib, nil
}

// cached reports whether dir holds a library whose tarball was verified.
func cached(dir string, a artifact) bool {
	b, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil || strings.TrimSpace(string(b)) != a.sha256 {
		return false
	}
	fi, err := os.Stat(filepath.Join(dir, libName))
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
}

// download fetches url into a temporary file in dir and verifies its sha256.
// It returns the file's path; on any error no file is left behind.
func download(ctx context.Context, url, dir string, a artifact, progress io.Writer) (path string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("embedch: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone() // Proxy: http.ProxyFromEnvironment
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return "", fmt.Errorf("embedch: download ClickHouse engine: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("embedch: download %s: %s", url, resp.Status)
	}

	f, err := os.CreateTemp(dir, "download-*.tgz")
	if err != nil {
		return "", fmt.Errorf("embedch: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	var w io.Writer = io.MultiWriter(f, h)
	size := resp.ContentLength
	if size <= 0 {
		size = a.size
	}
	desc := fmt.Sprintf("downloading ClickHouse engine (chDB %s, %d MB)", a.version, (size+1<<19)>>20)
	began := time.Now()
	switch {
	case progress == nil:
	case isTerminal(progress):
		w = io.MultiWriter(w, newBar(progress, size, desc))
	default: // a log file: no bar redrawn a thousand times
		fmt.Fprintf(progress, "%s from %s\n", desc, url)
	}
	if _, err = io.Copy(w, resp.Body); err != nil {
		return "", fmt.Errorf("embedch: download %s: %w", url, err)
	}
	if progress != nil && !isTerminal(progress) {
		fmt.Fprintf(progress, "downloaded in %v\n", time.Since(began).Round(100*time.Millisecond))
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("embedch: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.sha256 {
		err = fmt.Errorf("embedch: checksum mismatch for %s: got sha256 %s, want %s", url, got, a.sha256)
		return "", err
	}
	return f.Name(), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newBar is progressbar.DefaultBytes writing to w instead of stderr.
func newBar(w io.Writer, size int64, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(size,
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(10),
		progressbar.OptionThrottle(65*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionOnCompletion(func() { fmt.Fprint(w, "\n") }),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionFullWidth(),
		progressbar.OptionSetRenderBlankState(true),
	)
}

// extract copies the tarball member named member to dst, through a temporary
// file renamed into place.
func extract(tgz, member, dst string) (err error) {
	in, err := os.Open(tgz)
	if err != nil {
		return fmt.Errorf("embedch: %w", err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("embedch: read %s: %w", tgz, err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("embedch: %s not found in %s", member, tgz)
		}
		if err != nil {
			return fmt.Errorf("embedch: read %s: %w", tgz, err)
		}
		if hdr.Name == member && hdr.Typeflag == tar.TypeReg {
			return writeAtomic(dst, 0o755, func(w io.Writer) error {
				n, err := io.Copy(w, tr)
				if err == nil && n != hdr.Size {
					err = fmt.Errorf("short member: %d of %d bytes", n, hdr.Size)
				}
				return err
			})
		}
	}
}

func writeFileAtomic(dst string, data []byte, perm os.FileMode) error {
	return writeAtomic(dst, perm, func(w io.Writer) error { _, err := w.Write(data); return err })
}

// writeAtomic writes dst through a temporary file in the same directory,
// synced and then renamed over dst.
func writeAtomic(dst string, perm os.FileMode, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("embedch: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("embedch: write %s: %w", dst, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("embedch: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("embedch: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("embedch: %w", err)
	}
	if err = os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("embedch: %w", err)
	}
	return nil
}
