// Command controlplane is the test suite's Kubernetes control plane in one binary: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler, all built from their published Go
// modules (no container images, no downloads of release binaries). The component is chosen by the
// name the binary is called as (a symlink named kube-apiserver, ...) or by its first argument:
//
//	controlplane kube-apiserver --etcd-servers=... ...
//
// Built by scripts/test-deps/55-kubernetes.sh; started by test/harness/kube.ts.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// kubeCommands are the Kubernetes components, each a cobra command run by component-base's cli.
var kubeCommands = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
}

func main() {
	name, args := component(os.Args)
	if name == "etcd" {
		// etcdmain parses args[1:], like a main() of its own.
		etcdmain.Main(append([]string{"etcd"}, args...))
		return
	}
	newCommand, ok := kubeCommands[name]
	if !ok {
		usage(name)
		os.Exit(2)
	}
	command := newCommand()
	command.SetArgs(args)
	os.Exit(cli.Run(command))
}

// component returns the component selected by argv[0]'s base name, else by the first argument,
// and the arguments meant for it.
func component(argv []string) (string, []string) {
	base := strings.TrimSuffix(filepath.Base(argv[0]), ".exe")
	if isComponent(base) {
		return base, argv[1:]
	}
	if len(argv) > 1 {
		return argv[1], argv[2:]
	}
	return "", nil
}

func isComponent(name string) bool {
	_, ok := kubeCommands[name]
	return ok || name == "etcd"
}

func usage(got string) {
	names := []string{"etcd"}
	for name := range kubeCommands {
		names = append(names, name)
	}
	sort.Strings(names)
	if got != "" {
		fmt.Fprintf(os.Stderr, "unknown component %q\n", got)
	}
	fmt.Fprintf(os.Stderr, "usage: controlplane {%s} [flags]\n", strings.Join(names, "|"))
}
