package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

const (
	nodeName = "testenv-node"
	nodeIP   = "10.10.0.1"

	// AnnotationFail makes a pod that runs to completion (owned by a Job, or restartPolicy
	// Never) fail with exit code 1 instead of succeeding. Any value but "false" counts.
	AnnotationFail = "testenv.ferry.dev/fail"
	// AnnotationRunFor sets how long such a pod runs before it ends (a Go duration, default 1s).
	AnnotationRunFor = "testenv.ferry.dev/run-for"
	// AnnotationNotReady keeps a long-running pod Running but not Ready, for health tests.
	AnnotationNotReady = "testenv.ferry.dev/not-ready"
)

// runNode plays the kubelet and the scheduler for one node, and MetalLB for LoadBalancer
// Services: it registers a Ready node, binds pending pods to it, moves them to Running and
// Ready (or to Succeeded/Failed when they run to completion), finishes deleting terminating
// pods, and gives LoadBalancer Services an address from the pool.
func runNode(args []string) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	pool := fs.String("lb-pool", "127.0.0.0/8", "CIDR for LoadBalancer addresses")
	ownerPID := fs.Int("owner-pid", 0, "exit when this process is gone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	watchOwner(*ownerPID, "node")
	prefix, err := netip.ParsePrefix(*pool)
	if err != nil {
		return fmt.Errorf("--lb-pool: %w", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	if err := registerNode(ctx, client); err != nil {
		return fmt.Errorf("registering node %s: %w", nodeName, err)
	}
	sim := newNodeSim(client, prefix)
	return sim.run(ctx)
}

func registerNode(ctx context.Context, client kubernetes.Interface) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("128Gi"),
		corev1.ResourcePods:             resource.MustParse("1000"),
		corev1.ResourceEphemeralStorage: resource.MustParse("500Gi"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: nodeName,
			Labels: map[string]string{
				"kubernetes.io/hostname": nodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "testenv",
			},
		},
	}
	created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	now := metav1.Now()
	created.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				Message: "testenv simulated node is ready", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory",
				LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure",
				LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID",
				LastHeartbeatTime: now, LastTransitionTime: now},
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: nodeIP},
			{Type: corev1.NodeHostName, Address: nodeName},
		},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          kubernetesVersion(),
			ContainerRuntimeVersion: "testenv://simulated",
			OperatingSystem:         "linux",
			Architecture:            "amd64",
		},
	}
	_, err = client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

type nodeSim struct {
	client   kubernetes.Interface
	factory  informers.SharedInformerFactory
	pods     workqueue.TypedRateLimitingInterface[string]
	services workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	nextPod uint32
	lbPool  netip.Prefix
}

func newNodeSim(client kubernetes.Interface, pool netip.Prefix) *nodeSim {
	return &nodeSim{
		client:   client,
		factory:  informers.NewSharedInformerFactory(client, 0),
		pods:     workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		services: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		lbPool:   pool.Masked(),
	}
}

func enqueue(q workqueue.TypedRateLimitingInterface[string]) cache.ResourceEventHandlerFuncs {
	add := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			q.Add(key)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, obj any) { add(obj) },
	}
}

func (s *nodeSim) run(ctx context.Context) error {
	podInformer := s.factory.Core().V1().Pods().Informer()
	svcInformer := s.factory.Core().V1().Services().Informer()
	if _, err := podInformer.AddEventHandler(enqueue(s.pods)); err != nil {
		return err
	}
	if _, err := svcInformer.AddEventHandler(enqueue(s.services)); err != nil {
		return err
	}
	s.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.HasSynced, svcInformer.HasSynced) {
		return fmt.Errorf("informer caches did not sync")
	}
	fmt.Fprintf(os.Stderr, "simulated node %s running\n", nodeName)
	go s.work(ctx, s.pods, s.syncPod, 8)
	go s.work(ctx, s.services, s.syncService, 1)
	<-ctx.Done()
	s.pods.ShutDown()
	s.services.ShutDown()
	return nil
}

// work runs n workers over q; a failed key is retried with backoff, a requeue-after is honoured.
func (s *nodeSim) work(ctx context.Context, q workqueue.TypedRateLimitingInterface[string],
	sync func(context.Context, string) (time.Duration, error), n int) {
	for range n {
		go func() {
			for {
				key, quit := q.Get()
				if quit {
					return
				}
				after, err := sync(ctx, key)
				switch {
				case err != nil:
					fmt.Fprintf(os.Stderr, "sync %s: %v\n", key, err)
					q.AddRateLimited(key)
				case after > 0:
					q.Forget(key)
					q.AddAfter(key, after)
				default:
					q.Forget(key)
				}
				q.Done(key)
			}
		}()
	}
}

func (s *nodeSim) syncPod(ctx context.Context, key string) (time.Duration, error) {
	obj, exists, err := s.factory.Core().V1().Pods().Informer().GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return 0, err
	}
	pod := obj.(*corev1.Pod)
	pods := s.client.CoreV1().Pods(pod.Namespace)

	if pod.DeletionTimestamp != nil {
		// No kubelet waits for containers to stop: finish the deletion now.
		zero := int64(0)
		err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero,
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return 0, nil
		}
		return 0, err
	}
	if pod.Spec.NodeName == "" {
		if pod.Spec.SchedulerName != "" && pod.Spec.SchedulerName != corev1.DefaultSchedulerName {
			return 0, nil
		}
		err := pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: nodeName},
		}, metav1.CreateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, err
	}
	if pod.Spec.NodeName != nodeName {
		return 0, nil
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return 0, nil
	}

	runsToCompletion := ownedByJob(pod) || pod.Spec.RestartPolicy == corev1.RestartPolicyNever
	if runsToCompletion && pod.Status.Phase == corev1.PodRunning && pod.Status.StartTime != nil {
		runFor := parseRunFor(pod.Annotations[AnnotationRunFor])
		if left := time.Until(pod.Status.StartTime.Add(runFor)); left > 0 {
			return left, nil
		}
		fail := pod.Annotations[AnnotationFail]
		return 0, s.finishPod(ctx, pod, fail != "" && fail != "false")
	}
	if pod.Status.Phase == corev1.PodRunning {
		return 0, nil
	}
	return 0, s.startPod(ctx, pod, !runsToCompletion && pod.Annotations[AnnotationNotReady] == "")
}

func ownedByJob(pod *corev1.Pod) bool {
	for _, ref := range pod.OwnerReferences {
		if ref.Kind == "Job" && ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}

// startPod moves a bound pod to Running with every container started.
func (s *nodeSim) startPod(ctx context.Context, pod *corev1.Pod, ready bool) error {
	now := metav1.Now()
	p := pod.DeepCopy()
	readyStatus := corev1.ConditionFalse
	if ready {
		readyStatus = corev1.ConditionTrue
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.HostIP = nodeIP
	p.Status.HostIPs = []corev1.HostIP{{IP: nodeIP}}
	if p.Status.PodIP == "" {
		ip := s.podIP()
		p.Status.PodIP = ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	p.Status.StartTime = &now
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: readyStatus, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: readyStatus, LastTransitionTime: now},
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	p.Status.InitContainerStatuses = nil
	for _, c := range p.Spec.InitContainers {
		p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}},
		})
	}
	p.Status.ContainerStatuses = nil
	started := true
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), Ready: ready, Started: &started,
			ContainerID: "testenv://" + string(pod.UID) + "/" + c.Name,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	_, err := s.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version is on its way through the informer
	}
	return err
}

// finishPod ends a pod that runs to completion, with exit code 0 or 1.
func (s *nodeSim) finishPod(ctx context.Context, pod *corev1.Pod, failed bool) error {
	now := metav1.Now()
	p := pod.DeepCopy()
	phase, code, reason := corev1.PodSucceeded, int32(0), "Completed"
	if failed {
		phase, code, reason = corev1.PodFailed, 1, "Error"
	}
	p.Status.Phase = phase
	for i := range p.Status.Conditions {
		switch p.Status.Conditions[i].Type {
		case corev1.PodReady, corev1.ContainersReady:
			p.Status.Conditions[i].Status = corev1.ConditionFalse
			p.Status.Conditions[i].Reason = "PodCompleted"
			p.Status.Conditions[i].LastTransitionTime = now
		}
	}
	for i := range p.Status.ContainerStatuses {
		cs := &p.Status.ContainerStatuses[i]
		started := cs.State.Running
		startedAt := now
		if started != nil {
			startedAt = started.StartedAt
		}
		cs.Ready = false
		f := false
		cs.Started = &f
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, StartedAt: startedAt, FinishedAt: now,
			ContainerID: cs.ContainerID,
		}}
	}
	_, err := s.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func imageID(image string) string { return "testenv://" + image }

// podIP hands out addresses from 10.244.0.0/16; they are only data, nothing listens there.
func (s *nodeSim) podIP() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextPod++
	n := s.nextPod%65534 + 1
	return net.IPv4(10, 244, byte(n>>8), byte(n)).String()
}

func (s *nodeSim) syncService(ctx context.Context, key string) (time.Duration, error) {
	obj, exists, err := s.factory.Core().V1().Services().Informer().GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return 0, err
	}
	svc := obj.(*corev1.Service)
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(svc.Status.LoadBalancer.Ingress) > 0 {
		return 0, nil
	}
	if svc.Spec.LoadBalancerClass != nil {
		return 0, nil // another load-balancer implementation owns it
	}
	ip, err := s.allocateLB(svc)
	if err != nil {
		return 0, err
	}
	s2 := svc.DeepCopy()
	ipMode := corev1.LoadBalancerIPModeVIP
	s2.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip, IPMode: &ipMode}}
	_, err = s.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, s2, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return 0, nil
	}
	return 0, err
}

// allocateLB gives svc an address from the pool, avoiding those other Services hold. Called
// from one worker only, so two Services never get the same address.
func (s *nodeSim) allocateLB(svc *corev1.Service) (string, error) {
	used := map[netip.Addr]bool{}
	for _, o := range s.factory.Core().V1().Services().Informer().GetIndexer().List() {
		for _, ing := range o.(*corev1.Service).Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(ing.IP); err == nil {
				used[a] = true
			}
		}
	}
	return pickLBAddress(s.lbPool, used, svc.Spec.LoadBalancerIP)
}

// pickLBAddress returns the requested address when it is in the pool, else the lowest free
// one, skipping the network address, .0 addresses and the host's own 127.0.0.1.
func pickLBAddress(pool netip.Prefix, used map[netip.Addr]bool, requested string) (string, error) {
	if want, err := netip.ParseAddr(requested); err == nil && pool.Contains(want) {
		return want.String(), nil
	}
	for a := pool.Addr(); pool.Contains(a); a = a.Next() {
		if a == pool.Addr() || (a.Is4() && a.As4()[3] == 0) || a == netip.MustParseAddr("127.0.0.1") {
			continue
		}
		if !used[a] {
			return a.String(), nil
		}
	}
	return "", fmt.Errorf("load-balancer pool %s is exhausted", pool)
}

// parseRunFor reads AnnotationRunFor: a Go duration ("500ms", "3s") or whole seconds ("3");
// anything else, or nothing, means one second.
func parseRunFor(v string) time.Duration {
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second
	}
	return time.Second
}
