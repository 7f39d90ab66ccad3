// Command meshsim sends each flow of a flows file through the Envoy configuration that istiod
// generates for the rendered objects, and prints one JSON verdict per flow (issue 23: wire
// semantics from Istio's own code, not a hand-written model of Istio).
//
//	meshsim -objects objects.yaml -flows flows.json -out verdicts.json
//	meshsim -inject RENDER_DIR -pods pods.yaml -out injected.yaml
//
// The second form runs Istio's sidecar injector on pods first (see injectPods).
//
// Istio's test harness is usable from outside its tree: pilot/test/xds and pilot/pkg/simulation
// import no internal package, and every module they read is already in the istiod wrapper's
// go.sum (toolchain/gomod/istioctl; this module's go.sum adds two go.mod hashes), so the build
// reuses istiod's build cache. They take a *testing.T: main runs them under testing.Main.
//
// objects.yaml: Namespaces, Services, Pods, EndpointSlices (fed to Istio's Kubernetes service
// registry) and Istio config (PeerAuthentication, AuthorizationPolicy, DestinationRule,
// VirtualService, ...). Other kinds are ignored. flows.json: a list of Flow.
//
// How a flow is read, each step by Istio's own code:
//   - istiod: istio.io/istio/pilot/test/xds FakeDiscoveryServer (pilot/test/xds/fake.go), the
//     harness of Istio's own xDS tests: the real Kubernetes controller over a fake client + the
//     config store, and the real config generator (pilot/pkg/networking/core).
//   - traffic capture: the sidecar's redirect settings as Istio's CNI plugin parses them from the
//     pod's traffic.sidecar.istio.io/* annotations (cni/pkg/plugin/sidecar_redirect.go
//     NewRedirect, which also adds the always-excluded 15020,15021,15090); only the final
//     "is this port/address redirected" test over those lists is done here, as
//     tools/istio-iptables/pkg/capture/run.go builds its chains.
//   - the client's sidecar: pilot/pkg/simulation (traffic.go) Run with CallModeOutbound on the
//     listeners/clusters/routes istiod generates for the client pod, as
//     pilot/pkg/networking/core/sidecar_simulation_test.go does; the matched cluster's transport
//     socket (auto-mTLS transport_socket_matches against the endpoint's metadata from istiod's
//     EDS, pilot/pkg/networking/core/cluster_tls.go) says whether the wire is Istio mTLS.
//   - the server's sidecar: simulation.Run with CallModeInbound and that wire TLS mode, as
//     pilot/pkg/networking/core/peer_authentication_simulation_test.go does (STRICT + plaintext
//     = ErrNoFilterChain; TLS without Istio's client cert = ErrMTLSError).
//   - authorization: the RBAC filters istiod put on the matched inbound filter chain
//     (pilot/pkg/security/authz/builder) evaluated with Envoy's RBAC semantics (rbac.go).
//
// What simulation.Run does not do, done here over istiod's own output: a VirtualService's
// weighted route (Run reports single-cluster routes only), the endpoint's transport socket, and
// RBAC; and RDS names are built once each (core.ConfigGenTest builds a name per listener).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	envoycore "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/structpb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"istio.io/istio/cni/pkg/plugin"
	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/core"
	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xds"
	istiocluster "istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/kube/inject"
	istiolog "istio.io/istio/pkg/log"
	"istio.io/istio/pkg/util/sets"
)

// Flow is one call: who dials what, how.
type Flow struct {
	Name string `json:"name"`
	// SourcePod "namespace/name"; empty for a caller outside the cluster's pods (the API server)
	SourcePod string `json:"source_pod,omitempty"`
	SourceIP  string `json:"source_ip,omitempty"` // for SourcePod == ""
	DestPod   string `json:"dest_pod"`            // "namespace/name": the pod that must answer
	// Service "name.namespace": the client dials the Service (its ClusterIP, or for a headless
	// Service the pod IP with the Service's name as host); empty: the pod IP itself
	Service  string `json:"service,omitempty"`
	Port     int    `json:"port"`     // the port dialled (the Service port when Service is set)
	Protocol string `json:"protocol"` // "http" or "tcp"
	AppTLS   bool   `json:"app_tls,omitempty"`
	// AppMTLS: the client itself speaks Istio mTLS with its workload certificate (Prometheus
	// with Istio's certificates mounted, Istio's documented scrape of STRICT targets)
	AppMTLS bool   `json:"app_mtls,omitempty"`
	Path    string `json:"path,omitempty"`
	Method  string `json:"method,omitempty"`
}

// Verdict is what happened to the flow, and the evidence.
type Verdict struct {
	Name string `json:"name"`
	// Outcome: mtls-allowed | mtls-denied | plaintext-allowed | plaintext-denied | tls-allowed |
	// rejected (the server's sidecar refused the connection) | not-captured (the server's sidecar
	// never sees it: a port exclusion) | no-sidecar | client-error | error
	Outcome string     `json:"outcome"`
	Detail  string     `json:"detail"`
	Client  ClientSide `json:"client"`
	Server  ServerSide `json:"server"`
}

type ClientSide struct {
	Sidecar  bool   `json:"sidecar"`
	Captured bool   `json:"captured"`
	Listener string `json:"listener,omitempty"`
	Cluster  string `json:"cluster,omitempty"`
	Wire     string `json:"wire"` // mtls | tls | plaintext
	RoutedTo string `json:"routed_to,omitempty"`
	Error    string `json:"error,omitempty"`
}

type ServerSide struct {
	Sidecar     bool     `json:"sidecar"`
	Captured    bool     `json:"captured"`
	Port        int      `json:"port"` // the pod port the bytes arrive on
	Listener    string   `json:"listener,omitempty"`
	FilterChain string   `json:"filter_chain,omitempty"`
	Cluster     string   `json:"cluster,omitempty"`
	Error       string   `json:"error,omitempty"`
	RBAC        []string `json:"rbac,omitempty"`
}

type pod struct {
	obj      *corev1.Pod
	ip       string
	sidecar  bool
	redirect *plugin.Redirect
}

type world struct {
	pods     map[string]*pod // ns/name, and by IP below
	services map[string]*corev1.Service
	sims     map[string]*proxySim
	fake     *xds.FakeDiscoveryServer
}

type proxySim struct {
	sim *simulation.Simulation
	eds map[string]*endpoint.ClusterLoadAssignment
}

func main() {
	injectDir := flag.String("inject", "", "inject mode: the injector's rendered config (istiod part's render/)")
	pods := flag.String("pods", "", "inject mode: pods to inject (multi-document YAML)")
	objects := flag.String("objects", "", "rendered objects (multi-document YAML)")
	flows := flag.String("flows", "", "flows (JSON list)")
	out := flag.String("out", "", "verdicts (JSON list) are written here")
	flag.Parse()
	if *injectDir != "" && *pods != "" && *out != "" {
		if err := injectPods(*injectDir, *pods, *out); err != nil {
			die(err)
		}
		return
	}
	if *objects == "" || *flows == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: meshsim -objects FILE -flows FILE -out FILE\n"+
			"       meshsim -inject RENDER_DIR -pods FILE -out FILE")
		os.Exit(2)
	}
	// istiod logs to stdout by default; keep it to errors on stderr
	opts := istiolog.DefaultOptions()
	opts.OutputPaths = []string{"stderr"}
	opts.SetDefaultOutputLevel(istiolog.OverrideScopeName, istiolog.ErrorLevel)
	if err := istiolog.Configure(opts); err != nil {
		die(err)
	}
	raw, err := os.ReadFile(*objects)
	if err != nil {
		die(err)
	}
	fraw, err := os.ReadFile(*flows)
	if err != nil {
		die(err)
	}
	var fl []Flow
	if err := json.Unmarshal(fraw, &fl); err != nil {
		die(fmt.Errorf("flows: %v", err))
	}
	// pilot/pkg/simulation and pilot/test/xds take a *testing.T (they are Istio's test
	// harness): run them under the testing package's own runner (testing.Main, kept for tools
	// that simulate "go test"), one subtest per flow, so a t.Fatal inside Istio's harness fails
	// that flow only. testing.Main exits the process: the verdicts are written inside.
	testing.Main(func(_, _ string) (bool, error) { return true, nil }, []testing.InternalTest{{
		Name: "meshsim",
		F: func(t *testing.T) {
			w := newWorld(t, string(raw))
			verdicts := make([]Verdict, 0, len(fl))
			for _, f := range fl {
				v := Verdict{Name: f.Name, Outcome: "error", Detail: "Istio's harness failed on this flow (see the output)"}
				t.Run(f.Name, func(t *testing.T) { v = w.evaluate(t, f) })
				verdicts = append(verdicts, v)
			}
			body, err := json.MarshalIndent(verdicts, "", "  ")
			if err != nil {
				die(err)
			}
			if err := os.WriteFile(*out, body, 0o644); err != nil {
				die(err)
			}
			os.Exit(0)
		},
	}}, nil, nil)
}

// injectPods runs Istio's sidecar injector (pkg/kube/inject, what istioctl kube-inject and the
// webhook run) with the templates, values and mesh config the local platform's istiod serves
// (platform/build.sh istiod renders them from Istio's charts, CNI mode): the pods come out as the
// API server stores them, with the injector's labels, the traffic/prometheus annotations it
// writes (metrics merging rewrites prometheus.io/port to 15020) and the istio-proxy container.
// A pod that opts out (sidecar.istio.io/inject: "false") comes out unchanged.
func injectPods(dir, in, out string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "inject", "config"))
	if err != nil {
		return err
	}
	cfg, err := inject.UnmarshalConfig(raw)
	if err != nil {
		return err
	}
	templates, err := inject.ParseTemplates(cfg.RawTemplates)
	if err != nil {
		return err
	}
	values, err := os.ReadFile(filepath.Join(dir, "inject", "values"))
	if err != nil {
		return err
	}
	vc, err := inject.NewValuesConfig(string(values))
	if err != nil {
		return err
	}
	mc, err := mesh.ReadMeshConfig(filepath.Join(dir, "mesh"))
	if err != nil {
		return err
	}
	r, err := os.Open(in)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	defer w.Close()
	return inject.IntoResourceFile(nil, templates, vc, "", mc, r, w, func(msg string) {
		fmt.Fprint(os.Stderr, msg)
	})
}

func die(err error) {
	fmt.Fprintln(os.Stderr, "meshsim:", err)
	os.Exit(1)
}

// newWorld splits the objects: Kubernetes kinds to the fake client behind Istio's kube registry,
// Istio kinds to its config store (crd.ParseInputs, as sidecar_simulation_test.go does).
func newWorld(t *testing.T, all string) *world {
	w := &world{pods: map[string]*pod{}, services: map[string]*corev1.Service{}, sims: map[string]*proxySim{}}
	var kube, istio []string
	for _, doc := range strings.Split(all, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("objects: %v", err)
		}
		group := strings.SplitN(head.APIVersion, "/", 2)[0]
		switch {
		case strings.HasSuffix(group, "istio.io"):
			istio = append(istio, doc)
		case head.Kind == "Pod":
			p := &corev1.Pod{}
			if err := yaml.Unmarshal([]byte(doc), p); err != nil {
				t.Fatalf("pod: %v", err)
			}
			// the injector labels the pods it injects (security.istio.io/tlsMode: istio)
			_, injected := p.Labels["security.istio.io/tlsMode"]
			r, err := plugin.NewRedirect(&plugin.PodInfo{Annotations: p.Annotations})
			if err != nil {
				t.Fatalf("pod %s/%s: Istio's CNI plugin rejects its annotations: %v", p.Namespace, p.Name, err)
			}
			w.pods[p.Namespace+"/"+p.Name] = &pod{obj: p, ip: p.Status.PodIP, sidecar: injected, redirect: r}
			kube = append(kube, doc)
		case head.Kind == "Service":
			s := &corev1.Service{}
			if err := yaml.Unmarshal([]byte(doc), s); err != nil {
				t.Fatalf("service: %v", err)
			}
			w.services[s.Name+"."+s.Namespace] = s
			kube = append(kube, doc)
		case head.Kind == "Namespace" || head.Kind == "EndpointSlice":
			kube = append(kube, doc)
		}
	}
	configs, _, err := crd.ParseInputs(strings.Join(istio, "\n---\n"))
	if err != nil {
		t.Fatalf("Istio config: %v", err)
	}
	w.fake = xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		Configs:                configs,
		KubernetesObjectString: strings.Join(kube, "\n---\n"),
	})
	return w
}

// proxy is the sidecar of pod p as istiod sees it when that sidecar connects.
func (w *world) proxy(t *testing.T, p *pod) *proxySim {
	key := p.obj.Namespace + "/" + p.obj.Name
	if s, ok := w.sims[key]; ok {
		return s
	}
	labels := p.obj.Labels
	px := w.fake.SetupProxy(&model.Proxy{
		Type:            model.SidecarProxy,
		ID:              p.obj.Name + "." + p.obj.Namespace,
		IPAddresses:     []string{p.ip},
		ConfigNamespace: p.obj.Namespace,
		Labels:          labels,
		Metadata: &model.NodeMetadata{
			Namespace:      p.obj.Namespace,
			Labels:         labels,
			ServiceAccount: p.obj.Spec.ServiceAccountName,
			ClusterID:      istiocluster.ID("Kubernetes"),
		},
	})
	eds := map[string]*endpoint.ClusterLoadAssignment{}
	for _, cla := range w.fake.Endpoints(px) {
		eds[cla.ClusterName] = cla
	}
	sim := simulation.NewSimulation(t, w.fake, px)
	// core.ConfigGenTest.RoutesFromListeners (pilot/pkg/networking/core/fake.go) asks for one
	// route per listener, so a name shared by several listeners (a headless Service's
	// per-endpoint listeners) is built again, empty the second time. Envoy subscribes to RDS
	// names as a set: build each once, as istiod serves them.
	names := sets.SortedList(sets.New(core.ExtractRoutesFromListeners(sim.Listeners)...))
	res, _ := w.fake.ConfigGen.BuildHTTPRoutes(px, &model.PushRequest{Push: w.fake.PushContext()}, names)
	sim.Routes = sim.Routes[:0]
	for _, r := range res {
		rc := &route.RouteConfiguration{}
		if err := r.Resource.UnmarshalTo(rc); err != nil {
			t.Fatal(err)
		}
		sim.Routes = append(sim.Routes, rc)
	}
	s := &proxySim{sim: sim, eds: eds}
	w.sims[key] = s
	return s
}

func (w *world) evaluate(t *testing.T, f Flow) Verdict {
	v := Verdict{Name: f.Name}
	dst, ok := w.pods[f.DestPod]
	if !ok {
		return fail(v, "no pod "+f.DestPod)
	}
	var src *pod
	if f.SourcePod != "" {
		if src, ok = w.pods[f.SourcePod]; !ok {
			return fail(v, "no pod "+f.SourcePod)
		}
	}
	// what the client dials, and the pod port it lands on when nothing reroutes it
	addr, host, targetPort := dst.ip, "", f.Port
	if f.Service != "" {
		svc, ok := w.services[f.Service]
		if !ok {
			return fail(v, "no service "+f.Service)
		}
		host = svc.Name + "." + svc.Namespace + ".svc.cluster.local"
		if svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			addr = svc.Spec.ClusterIP
		}
		tp, err := servicePort(svc, f.Port, dst.obj)
		if err != nil {
			return fail(v, err.Error())
		}
		targetPort = tp
	}
	appWire := simulation.Plaintext
	if f.AppTLS {
		appWire = simulation.TLS
	}
	if f.AppMTLS {
		appWire = simulation.MTLS
	}
	proto := simulation.TCP
	if f.Protocol == "http" {
		proto = simulation.HTTP
	}
	wire := appWire
	v.Client.Wire = string(appWire)

	// client side
	if src != nil && src.sidecar {
		v.Client.Sidecar = true
		v.Client.Captured = outboundCaptured(src.redirect, addr, f.Port)
	}
	if v.Client.Captured {
		ps := w.proxy(t, src)
		call := simulation.Call{
			Address: addr, Port: f.Port, Protocol: proto, TLS: appWire, CallMode: simulation.CallModeOutbound,
			Path: f.Path,
		}
		if host != "" {
			call.HostHeader = host
			if f.AppTLS || f.AppMTLS {
				call.Sni = host
			}
		} else if proto == simulation.HTTP {
			call.HostHeader = fmt.Sprintf("%s:%d", addr, f.Port)
		}
		r := ps.sim.Run(call)
		v.Client.Listener, v.Client.Cluster = r.ListenerMatched, r.ClusterMatched
		if r.Error != nil {
			v.Client.Error = r.Error.Error()
			if r.Error == simulation.ErrNoVirtualHost {
				v.Client.Error += fmt.Sprintf(" (Host %q; route %s has %v)", call.HostHeader, r.RouteConfigMatched, domains(ps, r.RouteConfigMatched))
			}
			v.Outcome, v.Detail = "client-error", "the client's sidecar: "+v.Client.Error
			return v
		}
		if r.ClusterMatched == "" && r.RouteMatched != "" {
			// simulation.Run reports a single-cluster route only; a VirtualService's weighted
			// route: the weighted cluster that holds the destination, else the first with weight
			r.ClusterMatched = weightedCluster(ps, r, dst.ip)
			v.Client.Cluster = r.ClusterMatched
		}
		w2, ep, err := upstream(ps, r.ClusterMatched, dst.ip, appWire)
		if err != nil {
			v.Client.Error = err.Error()
			v.Outcome, v.Detail = "client-error", "the client's sidecar: "+err.Error()
			return v
		}
		wire = w2
		if ep.IsValid() {
			targetPort = int(ep.Port())
			if ip := ep.Addr().String(); ip != dst.ip {
				// the route sends it elsewhere (a subset): judge the pod that answers
				for _, p := range w.pods {
					if p.ip == ip {
						dst = p
						v.Client.RoutedTo = p.obj.Namespace + "/" + p.obj.Name
					}
				}
				if v.Client.RoutedTo == "" {
					return fail(v, "routed to "+ip+", which is no pod")
				}
			}
		}
		v.Client.Wire = string(wire)
	}

	// server side
	v.Server.Port = targetPort
	v.Server.Sidecar = dst.sidecar
	if !dst.sidecar {
		v.Outcome, v.Detail = "no-sidecar", "the destination pod has no sidecar"
		return v
	}
	v.Server.Captured = inboundCaptured(dst.redirect, targetPort)
	if !v.Server.Captured {
		v.Outcome = "not-captured"
		v.Detail = fmt.Sprintf("port %d is not redirected to the destination's sidecar (%s wire, no mTLS, no AuthorizationPolicy)", targetPort, wire)
		return v
	}
	ps := w.proxy(t, dst)
	var chain *listener.FilterChain
	hdrs := map[string]string{":method": f.Method, ":path": f.Path}
	if f.Method == "" {
		hdrs[":method"] = "GET"
	}
	if hdrs[":path"] == "" {
		hdrs[":path"] = "/"
	}
	call := simulation.Call{
		Address: dst.ip, Port: targetPort, Protocol: proto, TLS: wire, CallMode: simulation.CallModeInbound,
		Path: hdrs[":path"],
		CustomListenerValidations: []simulation.CustomFilterChainValidation{func(fc *listener.FilterChain) error {
			chain = fc
			return nil
		}},
	}
	if wire != simulation.Plaintext {
		// an HTTP request inside TLS is opaque to the sidecar's filter-chain match
		call.Protocol = proto
		if wire == simulation.TLS {
			call.Protocol = simulation.TCP
		}
	}
	if f.AppMTLS {
		// the application's own TLS client offers its own ALPN, not Istio's istio-* values
		call.Alpn = "http/1.1"
	}
	r := ps.sim.Run(call)
	v.Server.Listener, v.Server.FilterChain, v.Server.Cluster = r.ListenerMatched, r.FilterChainMatched, r.ClusterMatched
	if r.Error != nil {
		v.Server.Error = r.Error.Error()
		v.Outcome = "rejected"
		v.Detail = fmt.Sprintf("the destination's sidecar refuses %s on port %d: %v", wire, targetPort, r.Error)
		return v
	}
	if chain == nil {
		return fail(v, "no filter chain captured from the simulation")
	}
	peer := rbacPeer{port: uint32(targetPort), headers: hdrs}
	if src != nil {
		peer.ip = src.ip
	} else {
		peer.ip = f.SourceIP
	}
	if wire == simulation.MTLS && src != nil {
		// the identity Istio's CA gives the client's sidecar (SPIFFE, trust domain cluster.local)
		sa := src.obj.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		peer.principal = fmt.Sprintf("spiffe://cluster.local/ns/%s/sa/%s", src.obj.Namespace, sa)
	}
	allowed, trail, err := evaluateChain(chain, peer, proto == simulation.HTTP && wire != simulation.TLS)
	v.Server.RBAC = trail
	if err != nil {
		return fail(v, "RBAC: "+err.Error())
	}
	verb := "allowed"
	if !allowed {
		verb = "denied"
	}
	v.Outcome = string(wire) + "-" + verb
	v.Detail = fmt.Sprintf("%s on port %d, filter chain %q, RBAC %s", wire, targetPort, r.FilterChainMatched, verb)
	return v
}

func fail(v Verdict, msg string) Verdict {
	v.Outcome, v.Detail = "error", msg
	return v
}

// servicePort: the pod port behind a Service port (what kube-proxy / EDS resolve).
func servicePort(svc *corev1.Service, port int, p *corev1.Pod) (int, error) {
	for _, sp := range svc.Spec.Ports {
		if int(sp.Port) != port {
			continue
		}
		switch {
		case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
			for _, c := range p.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == sp.TargetPort.StrVal {
						return int(cp.ContainerPort), nil
					}
				}
			}
			return 0, fmt.Errorf("service %s: target port %q not on pod %s", svc.Name, sp.TargetPort.StrVal, p.Name)
		case sp.TargetPort.IntVal != 0:
			return int(sp.TargetPort.IntVal), nil
		default:
			return port, nil
		}
	}
	return 0, fmt.Errorf("service %s has no port %d", svc.Name, port)
}

// upstream: what the client's sidecar puts on the wire for the matched cluster, and the
// endpoint it connects to (invalid: the original destination). Passthrough forwards the
// application's own bytes.
func upstream(ps *proxySim, name, dstIP string, app simulation.TLSMode) (simulation.TLSMode, netip.AddrPort, error) {
	none := netip.AddrPort{}
	switch name {
	case "PassthroughCluster", "InboundPassthroughCluster":
		return app, none, nil
	case "BlackHoleCluster":
		return "", none, fmt.Errorf("the client's sidecar sends it to the BlackHoleCluster")
	case "":
		return "", none, fmt.Errorf("no cluster matched")
	}
	var c *cluster.Cluster
	for _, x := range ps.sim.Clusters {
		if x.Name == name {
			c = x
		}
	}
	if c == nil {
		return "", none, fmt.Errorf("cluster %s not generated", name)
	}
	var md map[string]string
	ep := none
	if cla := ps.eds[name]; cla != nil {
		// the destination's endpoint, else the first one (a subset routes elsewhere)
		var chosen *endpoint.LbEndpoint
		for _, loc := range cla.Endpoints {
			for _, le := range loc.LbEndpoints {
				addr := le.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()
				if chosen == nil || addr == dstIP {
					chosen = le
				}
				if addr == dstIP {
					break
				}
			}
		}
		if chosen != nil {
			sa := chosen.GetEndpoint().GetAddress().GetSocketAddress()
			if a, err := netip.ParseAddr(sa.GetAddress()); err == nil {
				ep = netip.AddrPortFrom(a, uint16(sa.GetPortValue()))
			}
			md = map[string]string{}
			if s := chosen.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"]; s != nil {
				for k, val := range s.Fields {
					md[k] = val.GetStringValue()
				}
			}
		}
		if !ep.IsValid() {
			return "", none, fmt.Errorf("cluster %s has no endpoint in istiod's EDS", name)
		}
	}
	// Envoy: the first transport_socket_matches entry whose match is a subset of the endpoint's
	// metadata wins, else transport_socket (cluster.proto); Istio's auto-mTLS fills them
	// (pilot/pkg/networking/core/cluster_tls.go)
	ts := c.GetTransportSocket()
	for _, m := range c.GetTransportSocketMatches() {
		if subset(m.GetMatch().GetFields(), md) {
			ts = m.GetTransportSocket()
			break
		}
	}
	mode, err := transportMode(ts)
	return mode, ep, err
}

func weightedCluster(ps *proxySim, r simulation.Result, dstIP string) string {
	first := ""
	for _, rc := range ps.sim.Routes {
		if rc.GetName() != r.RouteConfigMatched {
			continue
		}
		for _, vh := range rc.GetVirtualHosts() {
			if vh.GetName() != r.VirtualHostMatched {
				continue
			}
			for _, rt := range vh.GetRoutes() {
				if rt.GetName() != r.RouteMatched {
					continue
				}
				for _, wc := range rt.GetRoute().GetWeightedClusters().GetClusters() {
					if wc.GetWeight().GetValue() == 0 {
						continue
					}
					if first == "" {
						first = wc.GetName()
					}
					if cla := ps.eds[wc.GetName()]; cla != nil {
						for _, loc := range cla.Endpoints {
							for _, le := range loc.LbEndpoints {
								if le.GetEndpoint().GetAddress().GetSocketAddress().GetAddress() == dstIP {
									return wc.GetName()
								}
							}
						}
					}
				}
			}
		}
	}
	return first
}

func domains(ps *proxySim, routeConfig string) []string {
	var out []string
	for _, rc := range ps.sim.Routes {
		if rc.GetName() == routeConfig {
			for _, vh := range rc.GetVirtualHosts() {
				out = append(out, vh.GetDomains()...)
			}
		}
	}
	return out
}

func subset(match map[string]*structpb.Value, md map[string]string) bool {
	for k, v := range match {
		if md[k] != v.GetStringValue() {
			return false
		}
	}
	return true
}

// transportMode: Istio mTLS is a TLS upstream context presenting the workload certificate
// ("default" SDS secret) with Istio's ALPN (pilot/pkg/networking/core/cluster_tls.go).
func transportMode(ts *envoycore.TransportSocket) (simulation.TLSMode, error) {
	if ts == nil || ts.GetTypedConfig() == nil {
		return simulation.Plaintext, nil
	}
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		// raw_buffer and wrappers istiod may add
		if strings.Contains(ts.GetTypedConfig().GetTypeUrl(), "raw_buffer") {
			return simulation.Plaintext, nil
		}
		return "", fmt.Errorf("transport socket %s (%s) not understood", ts.GetName(), ts.GetTypedConfig().GetTypeUrl())
	}
	cc := ctx.GetCommonTlsContext()
	for _, s := range cc.GetTlsCertificateSdsSecretConfigs() {
		if s.GetName() == "default" {
			return simulation.MTLS, nil
		}
	}
	return simulation.TLS, nil
}

// outboundCaptured / inboundCaptured: whether the sidecar's iptables redirect (built by
// tools/istio-iptables/pkg/capture/run.go from the CNI plugin's Redirect) sends this
// destination to Envoy. Excluded ports and ranges RETURN first; then "*" or the listed ranges.
func outboundCaptured(r *plugin.Redirect, ip string, port int) bool {
	if inList(field(r, "excludeOutboundPorts"), port) {
		return false
	}
	if inList(field(r, "includeOutboundPorts"), port) {
		return true
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	if inCIDRs(field(r, "excludeIPCidrs"), a) {
		return false
	}
	inc := strings.TrimSpace(field(r, "includeIPCidrs"))
	return inc == "*" || inCIDRs(inc, a)
}

func inboundCaptured(r *plugin.Redirect, port int) bool {
	inc := strings.TrimSpace(field(r, "includeInboundPorts"))
	if inc == "*" {
		return !inList(field(r, "excludeInboundPorts"), port)
	}
	return inList(inc, port)
}

// field reads one of the CNI plugin's parsed redirect settings (unexported in
// cni/pkg/plugin.Redirect, which only hands them to istio-iptables).
func field(r *plugin.Redirect, name string) string {
	return reflect.ValueOf(r).Elem().FieldByName(name).String()
}

func inList(list string, port int) bool {
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "*" {
			return true
		}
		if n, err := strconv.Atoi(p); err == nil && n == port {
			return true
		}
	}
	return false
}

func inCIDRs(list string, a netip.Addr) bool {
	for _, c := range strings.Split(list, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if c == "*" {
			return true
		}
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(a) {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
