// Command testenv runs a real Kubernetes control plane on the local machine for ferry's tests
// and demo: embedded etcd, the upstream kube-apiserver and kube-controller-manager (built from the
// k8s.io/kubernetes module pinned in go.mod), and a simulated node that plays the kubelet's part.
//
// Usage:
//
//	testenv up --dir DIR [--lb-pool CIDR] [--timeout 3m] [--owner-pid PID]
//	testenv down --dir DIR
//	testenv status --dir DIR
//
// `up` starts every component as its own process (the apiserver's signal handling can be set up
// only once per process), writes DIR/kubeconfig (admin) and DIR/restricted.kubeconfig, and returns
// when the cluster is ready. The internal subcommands `etcd`, `apiserver`, `controller-manager`
// and `node` are what `up` starts; they are not meant to be run by hand.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "up":
		err = runUp(args)
	case "down":
		err = runDown(args)
	case "status":
		err = runStatus(args)
	case "etcd":
		err = runEtcd(args)
	case "apiserver":
		err = runAPIServer(args)
	case "controller-manager":
		err = runControllerManager(args)
	case "node":
		err = runNode(args)
	case "version":
		fmt.Println(kubernetesVersion())
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "testenv: unknown command %q\n", cmd)
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `testenv: a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, simulated node)

Commands:
  up --dir DIR [--lb-pool CIDR] [--timeout DURATION] [--owner-pid PID]
        start a control plane whose state, logs, pids and kubeconfigs live in DIR
  down --dir DIR
        stop the control plane started in DIR
  status --dir DIR
        print which components of DIR are running
  version
        print the Kubernetes version this binary was built from
`)
}
