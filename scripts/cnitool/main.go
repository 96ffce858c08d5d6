// cnitool drives CNI plugins through libcni, the library that containerd, CRI-O and Multus use: conflist
// parsing, chaining with prevResult, version conversion of results, and the on-disk result cache that CHECK
// and DEL read. It exists so the tests (and people) exercise openpe-passthrough on a runtime's own code path.
//
// Built from Debian's golang-github-appc-cni-dev (libcni 1.1.2) by scripts/build-cnitool.sh.
//
// Usage:
//
//	cnitool add|check|del|result <conflist-or-conf-file> <netns-path>
//	cnitool validate <conflist-or-conf-file>
//	cnitool version <plugin-type>
//
// Environment (as a runtime would set it up):
//
//	CNI_PATH         ':'-separated plugin directories (required)
//	CNI_CACHE_DIR    libcni's cache directory (default /var/lib/cni); results live under <dir>/results
//	CNI_CONTAINERID  the container id (default: derived from the netns path)
//	CNI_IFNAME       the interface name (default eth0)
//	CNI_ARGS         K=V;K2=V2 pairs passed to every plugin
//	CAP_ARGS         a JSON object of capability arguments, injected as runtimeConfig into the plugins
//	                 whose "capabilities" declare them
//
// add prints the chain's final result, result prints the cached one; both as JSON on stdout. Every failure
// goes to stderr, with the CNI error code when a plugin returned one, and exits 1 (2 for usage errors).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

const usage = `usage: cnitool add|check|del|result <conflist-or-conf-file> <netns-path>
       cnitool validate <conflist-or-conf-file>
       cnitool version <plugin-type>
environment: CNI_PATH (required), CNI_CACHE_DIR, CNI_CONTAINERID, CNI_IFNAME, CNI_ARGS, CAP_ARGS`

func main() {
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "cnitool: %v\n", err)
		var cniErr *types.Error
		if errors.As(err, &cniErr) {
			fmt.Fprintf(os.Stderr, "cnitool: CNI error code %d\n", cniErr.Code)
		}
	}
	os.Exit(code)
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + "\n" + usage }

func run(argv []string) (int, error) {
	if len(argv) < 2 {
		return 2, usageError{"missing arguments"}
	}
	verb := strings.ToLower(argv[0])
	paths := filepath.SplitList(os.Getenv("CNI_PATH"))
	if len(paths) == 0 {
		return 2, usageError{"CNI_PATH is not set"}
	}
	cacheDir := os.Getenv("CNI_CACHE_DIR")
	if cacheDir == "" {
		cacheDir = libcni.CacheDir
	}
	cni := libcni.NewCNIConfigWithCacheDir(paths, cacheDir, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	switch verb {
	case "version":
		info, err := cni.GetVersionInfo(ctx, argv[1])
		if err != nil {
			return 1, fmt.Errorf("version of %s: %w", argv[1], err)
		}
		return 0, printJSON(map[string]interface{}{"supportedVersions": info.SupportedVersions()})
	case "validate":
		list, err := loadList(argv[1])
		if err != nil {
			return 1, err
		}
		caps, err := cni.ValidateNetworkList(ctx, list)
		if err != nil {
			return 1, fmt.Errorf("validate %s: %w", list.Name, err)
		}
		if caps == nil {
			caps = []string{}
		}
		return 0, printJSON(map[string]interface{}{"name": list.Name, "cniVersion": list.CNIVersion, "capabilities": caps})
	case "add", "check", "del", "result":
	default:
		return 2, usageError{fmt.Sprintf("unknown command %q", argv[0])}
	}

	if len(argv) != 3 {
		return 2, usageError{fmt.Sprintf("%s needs a configuration file and a netns path", verb)}
	}
	list, err := loadList(argv[1])
	if err != nil {
		return 1, err
	}
	rt, err := runtimeConf(argv[2])
	if err != nil {
		return 2, err
	}

	switch verb {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			return 1, fmt.Errorf("ADD %s: %w", list.Name, err)
		}
		return 0, result.PrintTo(os.Stdout)
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			return 1, fmt.Errorf("CHECK %s: %w", list.Name, err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			return 1, fmt.Errorf("DEL %s: %w", list.Name, err)
		}
	case "result":
		result, err := cni.GetNetworkListCachedResult(list, rt)
		if err != nil {
			return 1, fmt.Errorf("cached result of %s: %w", list.Name, err)
		}
		if result == nil {
			return 1, fmt.Errorf("no cached result for %s (container %s, ifname %s) under %s", list.Name, rt.ContainerID, rt.IfName, cacheDir)
		}
		return 0, result.PrintTo(os.Stdout)
	}
	return 0, nil
}

// loadList reads a conflist, or a single plugin configuration wrapped into a list as runtimes do.
func loadList(file string) (*libcni.NetworkConfigList, error) {
	bytes, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(bytes, &probe); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if _, isList := probe["plugins"]; isList {
		list, err := libcni.ConfListFromBytes(bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return list, nil
	}
	conf, err := libcni.ConfFromBytes(bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	list, err := libcni.ConfListFromConf(conf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return list, nil
}

func runtimeConf(netns string) (*libcni.RuntimeConf, error) {
	if !filepath.IsAbs(netns) {
		return nil, usageError{fmt.Sprintf("the netns path %q must be absolute (e.g. /var/run/netns/NAME)", netns)}
	}
	id := os.Getenv("CNI_CONTAINERID")
	if id == "" {
		sum := sha256.Sum256([]byte(netns))
		id = "cnitool-" + hex.EncodeToString(sum[:10])
	}
	ifname := os.Getenv("CNI_IFNAME")
	if ifname == "" {
		ifname = "eth0"
	}
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: ifname}
	if raw := os.Getenv("CNI_ARGS"); raw != "" {
		for _, pair := range strings.Split(raw, ";") {
			if pair == "" {
				continue
			}
			kv := strings.SplitN(pair, "=", 2)
			if len(kv) != 2 {
				return nil, usageError{fmt.Sprintf("CNI_ARGS: %q is not KEY=VALUE", pair)}
			}
			rt.Args = append(rt.Args, [2]string{kv[0], kv[1]})
		}
	}
	if raw := os.Getenv("CAP_ARGS"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &rt.CapabilityArgs); err != nil {
			return nil, usageError{fmt.Sprintf("CAP_ARGS is not a JSON object: %v", err)}
		}
	}
	return rt, nil
}

func printJSON(v interface{}) error {
	out, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(out))
	return err
}
