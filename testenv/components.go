package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

// controllers is the set of kube-controller-manager controllers a test cluster runs.
var controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"daemonset-controller",
	"job-controller",
	"cronjob-controller",
	"namespace-controller",
	"garbage-collector-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"endpoints-controller",
	"endpointslice-controller",
	// Not in the minimal list, but users expect them: `edit`/`view` get their rules by
	// aggregation, finished Jobs with ttlSecondsAfterFinished go away, and every namespace gets
	// its kube-root-ca.crt ConfigMap.
	"clusterrole-aggregation-controller",
	"ttl-after-finished-controller",
	"root-ca-certificate-publisher-controller",
}

// watchOwner exits the process when the process ownerPID is gone, so a control plane started
// by a test binary stops when that binary ends, however it ends.
func watchOwner(ownerPID int, name string) {
	if ownerPID <= 0 {
		return
	}
	go func() {
		for {
			if !processAlive(ownerPID) {
				fmt.Fprintf(os.Stderr, "testenv %s: owner process %d is gone, exiting\n", name, ownerPID)
				os.Exit(0)
			}
			time.Sleep(time.Second)
		}
	}()
}

func runEtcd(args []string) error {
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "etcd data directory")
	clientPort := fs.Int("client-port", 0, "client port on 127.0.0.1")
	peerPort := fs.Int("peer-port", 0, "peer port on 127.0.0.1")
	ownerPID := fs.Int("owner-pid", 0, "exit when this process is gone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" || *clientPort == 0 || *peerPort == 0 {
		return fmt.Errorf("--data-dir, --client-port and --peer-port are required")
	}
	watchOwner(*ownerPID, "etcd")

	cfg := embed.NewConfig()
	cfg.Name = "testenv"
	cfg.Dir = *dataDir
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "warn"
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", *clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", *peerPort)}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("starting etcd in %s: %w", *dataDir, err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "etcd ready on %s\n", clientURL.String())
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		return fmt.Errorf("etcd did not become ready within 60s")
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-e.Err():
		return fmt.Errorf("etcd failed: %w", err)
	case <-sig:
		return nil
	}
}

// runAPIServer runs the upstream kube-apiserver command with the flags `up` computed.
func runAPIServer(args []string) error {
	args, ownerPID := takeOwnerFlag(args)
	watchOwner(ownerPID, "apiserver")
	cmd := apiserver.NewAPIServerCommand()
	cmd.SetArgs(args)
	return cmd.ExecuteContext(context.Background())
}

// runControllerManager runs the upstream kube-controller-manager command.
func runControllerManager(args []string) error {
	args, ownerPID := takeOwnerFlag(args)
	watchOwner(ownerPID, "controller-manager")
	cmd := controllermanager.NewControllerManagerCommand()
	cmd.SetArgs(args)
	return cmd.ExecuteContext(context.Background())
}

// takeOwnerFlag removes `--owner-pid=N` from args meant for an upstream command.
func takeOwnerFlag(args []string) ([]string, int) {
	out := args[:0:0]
	owner := 0
	for _, a := range args {
		var n int
		if _, err := fmt.Sscanf(a, "--owner-pid=%d", &n); err == nil {
			owner = n
			continue
		}
		out = append(out, a)
	}
	return out, owner
}

// apiserverArgs are the kube-apiserver flags for a cluster laid out in dir.
func apiserverArgs(dir string, ports ports) []string {
	p := func(name string) string { return filepath.Join(dir, "pki", name) }
	return []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", ports.EtcdClient),
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", ports.APIServer),
		"--cert-dir=" + filepath.Join(dir, "pki"),
		"--tls-cert-file=" + p("apiserver.crt"),
		"--tls-private-key-file=" + p("apiserver.key"),
		"--client-ca-file=" + p("ca.crt"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p("sa.pub"),
		"--service-account-signing-key-file=" + p("sa.key"),
		// No real network sits behind the cluster: the `kubernetes` Service's endpoints would
		// point at loopback, which Endpoints validation rejects.
		"--endpoint-reconciler-type=none",
		// TESTENV_PROFILING=1 serves /debug/pprof, so that a benchmark can see where the
		// API server spends its CPU (`kubectl get --raw '/debug/pprof/profile?seconds=10'`).
		"--profiling=" + strconv.FormatBool(os.Getenv("TESTENV_PROFILING") == "1"),
		"--v=1",
	}
}

// controllerManagerArgs are the kube-controller-manager flags for a cluster laid out in dir.
func controllerManagerArgs(dir string) []string {
	return []string{
		"--kubeconfig=" + filepath.Join(dir, "kubeconfig"),
		"--controllers=" + strings.Join(controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--service-account-private-key-file=" + filepath.Join(dir, "pki", "sa.key"),
		"--root-ca-file=" + filepath.Join(dir, "pki", "ca.crt"),
		"--use-service-account-credentials=false",
		// Fast reactions make tests quick: the garbage collector and namespace controller
		// otherwise wait on long resyncs.
		"--concurrent-gc-syncs=10",
		"--namespace-sync-period=10s",
		"--profiling=false",
		"--v=1",
	}
}
