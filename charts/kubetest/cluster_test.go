package kubetest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/kube"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeVersion is the kube-apiserver scripts/kube-apiserver.sh builds
// (tools/kube-apiserver); client-go and Helm's Kubernetes libraries are the
// matching v0.37.2.
const kubeVersion = "v1.37.2"

// Env vars naming the binaries (`make test` sets them from the scripts).
const (
	envAPIServer = "WEFT_KUBE_APISERVER"
	envEtcd      = "WEFT_ETCD"
)

// fieldManager is the server-side apply manager Helm writes as; the tests
// read it back from managedFields.
const fieldManager = "helm"

// The package's tests share one etcd and one kube-apiserver, started by the
// first test that asks and stopped by TestMain; each test works in a
// namespace of its own.
var shared struct {
	once sync.Once
	c    *cluster
	err  error
}

func TestMain(m *testing.M) {
	kube.ManagedFieldsManager = fieldManager
	code := m.Run()
	if shared.c != nil {
		shared.c.stop()
	}
	os.Exit(code)
}

// cluster is a running etcd and kube-apiserver on 127.0.0.1 with an admin
// identity (a client certificate in group system:masters).
type cluster struct {
	dir        string
	procs      []*process // started order; stopped in reverse
	config     *rest.Config
	kubeconfig string
	client     kubernetes.Interface
	warnings   *warningLog
}

// apiServer returns the shared cluster, starting it on first use. It skips
// under -short and fails, never skips, when a binary is missing.
func apiServer(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("real API server tier (etcd + kube-apiserver); skipped by -short")
	}
	apiserverBin := apiServerBinary(t)
	etcdBin := etcdBinary(t)
	shared.once.Do(func() {
		start := time.Now()
		shared.c, shared.err = startCluster(apiserverBin, etcdBin)
		if shared.err == nil {
			t.Logf("etcd and kube-apiserver %s ready in %s", kubeVersion, time.Since(start).Round(time.Millisecond))
		}
	})
	if shared.err != nil {
		t.Fatalf("start etcd + kube-apiserver: %v", shared.err)
	}
	shared.c.warnings.take() // a test sees only its own warnings
	return shared.c
}

func apiServerBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envAPIServer); p != "" {
		if !isExecutable(p) {
			t.Fatalf("%s=%s is not an executable", envAPIServer, p)
		}
		return p
	}
	p := filepath.Join(cacheDir(), "kube-apiserver-"+kubeVersion, "kube-apiserver")
	if !isExecutable(p) {
		t.Fatalf("kube-apiserver %s not found at %s: run scripts/kube-apiserver.sh (builds it once from the Go module proxy, about ten minutes; make test does), or set %s", kubeVersion, p, envAPIServer)
	}
	return p
}

func etcdBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envEtcd); p != "" {
		if !isExecutable(p) {
			t.Fatalf("%s=%s is not an executable", envEtcd, p)
		}
		return p
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	t.Fatalf("etcd not found: run scripts/etcd.sh (installs Debian's etcd-server as root; make test does), or set %s", envEtcd)
	return ""
}

// cacheDir is scripts/kube-apiserver.sh's cache root.
func cacheDir() string {
	if d := os.Getenv("WEFT_CACHE_DIR"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "weft")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func startCluster(apiserverBin, etcdBin string) (_ *cluster, err error) {
	dir, err := os.MkdirTemp("", "weft-kubetest-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, warnings: &warningLog{}}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	pki, err := writePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}

	etcdURL, err := c.startEtcd(etcdBin)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	api, err := startProcess("kube-apiserver", filepath.Join(dir, "kube-apiserver.log"), apiserverBin,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The "kubernetes" Service's endpoints may not be a loopback
		// address, and nothing here needs them.
		"--endpoint-reconciler-type=none",
		fmt.Sprintf("--secure-port=%d", port),
		"--tls-cert-file="+pki.servingCert,
		"--tls-private-key-file="+pki.servingKey,
		"--client-ca-file="+pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.saPublic,
		"--service-account-signing-key-file="+pki.saPrivate,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		// As clusters that run privileged system pods do; PodSecurity,
		// not this flag, must be what refuses a privileged pod.
		"--allow-privileged=true",
		// The defaults include these; named so the tier's claim is visible.
		"--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,PodSecurity",
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, api)

	c.config = &rest.Config{
		Host: fmt.Sprintf("https://127.0.0.1:%d", port),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   pki.caPEM,
			CertData: pki.adminCertPEM,
			KeyData:  pki.adminKeyPEM,
		},
		QPS:            100,
		Burst:          200,
		WarningHandler: c.warnings,
	}
	if c.client, err = kubernetes.NewForConfig(c.config); err != nil {
		return nil, err
	}
	if err := c.waitReady(api, 2*time.Minute); err != nil {
		return nil, err
	}
	// Helm checks a chart's kubeVersion against what the server reports.
	if v, err := c.client.Discovery().ServerVersion(); err != nil {
		return nil, err
	} else if v.GitVersion != kubeVersion {
		return nil, fmt.Errorf("%s reports version %s, want %s: remove it and run scripts/kube-apiserver.sh", apiserverBin, v.GitVersion, kubeVersion)
	}
	if c.kubeconfig, err = c.writeKubeconfig(pki); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := c.installCRDs(ctx); err != nil {
		return nil, fmt.Errorf("CRDs: %w", err)
	}
	return c, nil
}

// startEtcd starts a single-member etcd on free loopback ports with its data
// in the cluster's temp dir and returns its client URL once healthy.
func (c *cluster) startEtcd(bin string) (string, error) {
	clientPort, err := freePort()
	if err != nil {
		return "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	p, err := startProcess("etcd", filepath.Join(c.dir, "etcd.log"), bin,
		"--name=weft-test",
		"--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=weft-test="+peerURL,
	)
	if err != nil {
		return "", err
	}
	c.procs = append(c.procs, p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(clientURL + "/health")
		if err == nil {
			ok := resp.StatusCode == http.StatusOK
			resp.Body.Close()
			if ok {
				return clientURL, nil
			}
		}
		if err := p.exited(); err != nil {
			return "", err
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("etcd not healthy after 30s%s", p.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady polls /readyz as the admin until every check passes.
func (c *cluster) waitReady(api *process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		body, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if err == nil && string(body) == "ok" {
			return nil
		}
		last = err
		if err := api.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready after %s (last: %v)%s", timeout, last, api.logTail())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// writeKubeconfig writes the admin's kubeconfig, which Helm's client reads.
func (c *cluster) writeKubeconfig(pki *pkiFiles) (string, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["weft-test"] = &clientcmdapi.Cluster{Server: c.config.Host, CertificateAuthorityData: pki.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: pki.adminCertPEM, ClientKeyData: pki.adminKeyPEM}
	cfg.Contexts["weft-test"] = &clientcmdapi.Context{Cluster: "weft-test", AuthInfo: "admin"}
	cfg.CurrentContext = "weft-test"
	p := filepath.Join(c.dir, "kubeconfig")
	return p, clientcmd.WriteToFile(*cfg, p)
}

// stop ends kube-apiserver, then etcd, and removes the temp dir.
func (c *cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop()
	}
	os.RemoveAll(c.dir)
}

// process is a child server whose output goes to a log file.
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProcess(name, logPath, bin string, args ...string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Die with the test binary, even when it is killed by a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports an error when the process has already ended.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v%s", p.name, p.err, p.logTail())
	default:
		return nil
	}
}

func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// logTail is the end of the process's log, for an error message.
func (p *process) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return "\n--- " + p.name + " log (" + p.log + ") ---\n" + strings.Join(lines, "\n")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// warningLog keeps the API server's warnings (Warning response headers),
// which is how the PodSecurity admission's warn mode speaks.
type warningLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningLog) HandleWarningHeader(code int, agent, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// take returns the warnings seen since the last take.
func (w *warningLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	msgs := w.msgs
	w.msgs = nil
	return msgs
}
