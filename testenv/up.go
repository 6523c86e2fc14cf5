package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Components in start order; `down` stops them in reverse.
var componentNames = []string{"etcd", "apiserver", "controller-manager", "node"}

// RestrictedUser is the user of DIR/restricted.kubeconfig. It may use the `edit` ClusterRole in
// the namespace RestrictedNamespace and nothing else, unless a test binds more.
const (
	RestrictedUser      = "restricted"
	RestrictedNamespace = "restricted"
)

type ports struct {
	EtcdClient int `json:"etcdClient"`
	EtcdPeer   int `json:"etcdPeer"`
	APIServer  int `json:"apiserver"`
}

// clusterState is kept in DIR/state.json: what `up` chose, so `status` and a second `up` agree.
type clusterState struct {
	Ports           ports  `json:"ports"`
	AdminToken      string `json:"adminToken"`
	RestrictedToken string `json:"restrictedToken"`
	LBPool          string `json:"lbPool"`
}

type upOptions struct {
	dir      string
	lbPool   string
	timeout  time.Duration
	ownerPID int
}

func runUp(args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	var o upOptions
	fs.StringVar(&o.dir, "dir", "", "directory for the cluster's state, logs, pids and kubeconfigs")
	fs.StringVar(&o.lbPool, "lb-pool", "127.0.0.0/8", "CIDR from which LoadBalancer Services get addresses")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "how long to wait for the cluster to become ready")
	fs.IntVar(&o.ownerPID, "owner-pid", 0, "stop the cluster when this process ends (0: run until `down`)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.dir == "" {
		return errors.New("--dir is required")
	}
	if _, _, err := net.ParseCIDR(o.lbPool); err != nil {
		return fmt.Errorf("--lb-pool %q is not a CIDR: %w", o.lbPool, err)
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	o.dir = dir
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}

	if st, err := loadState(dir); err == nil && allRunning(dir) {
		if err := waitReady(context.Background(), dir, 15*time.Second, nil); err == nil {
			printReady(dir, st)
			return nil
		}
	}
	// Whatever is left of an earlier run goes, so the new one starts clean.
	stopAll(dir)

	st, err := prepare(o)
	if err != nil {
		return err
	}
	started := map[string]*process{}
	fail := func(component string, err error) error {
		tail := logTail(filepath.Join(dir, "logs", component+".log"), 40)
		stopAll(dir)
		return fmt.Errorf("%s: %w\n--- last lines of %s ---\n%s", component, err,
			filepath.Join(dir, "logs", component+".log"), tail)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	owner := fmt.Sprintf("--owner-pid=%d", o.ownerPID)

	started["etcd"], err = spawn(dir, self, "etcd", "etcd",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--client-port="+strconv.Itoa(st.Ports.EtcdClient),
		"--peer-port="+strconv.Itoa(st.Ports.EtcdPeer), owner)
	if err != nil {
		return fail("etcd", err)
	}
	if err := waitTCP(ctx, st.Ports.EtcdClient, started["etcd"]); err != nil {
		return fail("etcd", err)
	}

	started["apiserver"], err = spawn(dir, self, "apiserver",
		append([]string{"apiserver"}, append(apiserverArgs(dir, st.Ports), owner)...)...)
	if err != nil {
		return fail("apiserver", err)
	}
	if err := waitReady(ctx, dir, o.timeout, started["apiserver"]); err != nil {
		return fail("apiserver", err)
	}

	started["controller-manager"], err = spawn(dir, self, "controller-manager",
		append([]string{"controller-manager"}, append(controllerManagerArgs(dir), owner)...)...)
	if err != nil {
		return fail("controller-manager", err)
	}
	started["node"], err = spawn(dir, self, "node", "node",
		"--kubeconfig="+filepath.Join(dir, "kubeconfig"), "--lb-pool="+st.LBPool, owner)
	if err != nil {
		return fail("node", err)
	}

	client, err := adminClient(dir)
	if err != nil {
		return fail("apiserver", err)
	}
	if err := waitFor(ctx, "the default ServiceAccount", started["controller-manager"], func() (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return fail("controller-manager", err)
	}
	if err := waitFor(ctx, "a Ready node", started["node"], func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		return err == nil && nodeReady(n), nil
	}); err != nil {
		return fail("node", err)
	}
	if err := waitFor(ctx, "the aggregated `edit` ClusterRole", started["controller-manager"], func() (bool, error) {
		role, err := client.RbacV1().ClusterRoles().Get(ctx, "edit", metav1.GetOptions{})
		return err == nil && len(role.Rules) > 0, nil
	}); err != nil {
		return fail("controller-manager", err)
	}
	if err := grantRestricted(ctx, client); err != nil {
		return fail("apiserver", fmt.Errorf("setting up the restricted user's Role: %w", err))
	}
	printReady(dir, st)
	return nil
}

// prepare writes what the components read before they start: keys and certificates, tokens,
// kubeconfigs and the chosen ports.
func prepare(o upOptions) (*clusterState, error) {
	if err := writePKI(o.dir); err != nil {
		return nil, fmt.Errorf("writing certificates: %w", err)
	}
	st, err := loadState(o.dir)
	if err != nil {
		st = &clusterState{AdminToken: randomToken(), RestrictedToken: randomToken()}
	}
	st.LBPool = o.lbPool
	free, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	st.Ports = ports{EtcdClient: free[0], EtcdPeer: free[1], APIServer: free[2]}

	tokens := fmt.Sprintf("%s,admin,uid-admin,\"system:masters\"\n%s,%s,uid-%s,\"testenv:restricted\"\n",
		st.AdminToken, st.RestrictedToken, RestrictedUser, RestrictedUser)
	if err := os.WriteFile(filepath.Join(o.dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return nil, err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", st.Ports.APIServer)
	ca := filepath.Join(o.dir, "pki", "ca.crt")
	if err := writeKubeconfig(filepath.Join(o.dir, "kubeconfig"), server, ca, "admin", st.AdminToken, "default"); err != nil {
		return nil, err
	}
	if err := writeKubeconfig(filepath.Join(o.dir, "restricted.kubeconfig"), server, ca, RestrictedUser,
		st.RestrictedToken, RestrictedNamespace); err != nil {
		return nil, err
	}
	data, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(filepath.Join(o.dir, "state.json"), data, 0o600); err != nil {
		return nil, err
	}
	return st, nil
}

func loadState(dir string) (*clusterState, error) {
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var st clusterState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func writeKubeconfig(path, server, caFile, user, token, namespace string) error {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: %s@testenv
  context:
    cluster: testenv
    user: %s
    namespace: %s
current-context: %s@testenv
`, server, base64Std(ca), user, token, user, user, namespace, user)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

func adminClient(dir string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	return kubernetes.NewForConfig(cfg)
}

// grantRestricted gives the restricted user `edit` in its namespace.
func grantRestricted(ctx context.Context, c *kubernetes.Clientset) error {
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: RestrictedNamespace},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = c.RbacV1().RoleBindings(RestrictedNamespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "restricted-edit"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: RestrictedUser}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// waitReady waits until the apiserver's /readyz answers ok.
func waitReady(ctx context.Context, dir string, timeout time.Duration, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client, err := adminClient(dir)
	if err != nil {
		return err
	}
	var last string
	err = waitFor(ctx, "/readyz", p, func() (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		return strings.TrimSpace(string(body)) == "ok", nil
	})
	if err != nil && last != "" {
		return fmt.Errorf("%w (last answer: %s)", err, last)
	}
	return err
}

// waitFor polls check until it is true, the context ends, or the process p exits.
func waitFor(ctx context.Context, what string, p *process, check func() (bool, error)) error {
	delay := 100 * time.Millisecond
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("exited before %s was ready", what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s", what)
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}

func waitTCP(ctx context.Context, port int, p *process) error {
	return waitFor(ctx, fmt.Sprintf("port %d", port), p, func() (bool, error) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false, nil
		}
		_ = c.Close()
		return true, nil
	})
}

func freePorts(n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// process is a component started by `up`; exited() tells whether it has ended.
type process struct {
	done chan struct{}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// spawn starts `self args...` in its own session with output to DIR/logs/NAME.log and writes
// its pid to DIR/NAME.pid. The process outlives `up`.
func spawn(dir, self, name string, args ...string) (*process, error) {
	logf, err := os.OpenFile(filepath.Join(dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(pidFile(dir, name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return nil, err
	}
	p := &process{done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func printReady(dir string, st *clusterState) {
	fmt.Printf("control plane ready: https://127.0.0.1:%d (Kubernetes %s)\n", st.Ports.APIServer, kubernetesVersion())
	fmt.Printf("  admin kubeconfig:      %s\n", filepath.Join(dir, "kubeconfig"))
	fmt.Printf("  restricted kubeconfig: %s (user %q, edit in namespace %q)\n",
		filepath.Join(dir, "restricted.kubeconfig"), RestrictedUser, RestrictedNamespace)
	fmt.Printf("  logs:                  %s\n", filepath.Join(dir, "logs"))
}

func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
