package main

// Evaluation of the RBAC filters istiod generated (pilot/pkg/security/authz/builder) on the
// filter chain the simulation matched. Istio has no Go evaluator of them (Envoy does it), and
// grpc-go's RBAC engine is an internal package, so this reads the Envoy RBAC protos with the
// semantics of envoy/config/rbac/v3/rbac.proto: an ALLOW filter admits a connection iff some
// policy matches (any permission and any principal); a DENY filter refuses it iff some policy
// matches; filters apply in chain order. A matcher this reader does not know is an error, never
// a silent allow or deny.

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	envoycore "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httprbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// rbacPeer is what Envoy knows about the connection / request when RBAC runs.
type rbacPeer struct {
	principal string // the peer certificate's URI SAN; "" without mTLS
	ip        string
	port      uint32
	headers   map[string]string // HTTP only: :method, :path
}

// evaluateChain runs every RBAC filter of the chain (network filters, then the HTTP filters of
// its HTTP connection manager when the request is HTTP). Returns allowed, a trail, error.
func evaluateChain(fc *listener.FilterChain, p rbacPeer, http bool) (bool, []string, error) {
	var trail []string
	allowed := true
	apply := func(name string, rules *rbacv3.RBAC) error {
		if rules == nil {
			return nil // shadow rules only: nothing enforced
		}
		ok, policy, err := evalRBAC(rules, p, http)
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		trail = append(trail, fmt.Sprintf("%s %s: matched %q -> %s", name, rules.GetAction(), policy, map[bool]string{true: "allow", false: "deny"}[ok]))
		allowed = allowed && ok
		return nil
	}
	for _, f := range fc.GetFilters() {
		tc := f.GetTypedConfig()
		if tc == nil {
			continue
		}
		switch {
		case strings.HasSuffix(tc.GetTypeUrl(), "envoy.extensions.filters.network.rbac.v3.RBAC"):
			r := &netrbac.RBAC{}
			if err := tc.UnmarshalTo(r); err != nil {
				return false, trail, err
			}
			if err := apply(f.GetName(), r.GetRules()); err != nil {
				return false, trail, err
			}
		case strings.HasSuffix(tc.GetTypeUrl(), "http_connection_manager.v3.HttpConnectionManager") && http:
			h := &hcmv3.HttpConnectionManager{}
			if err := tc.UnmarshalTo(h); err != nil {
				return false, trail, err
			}
			for _, hf := range h.GetHttpFilters() {
				htc := hf.GetTypedConfig()
				if htc == nil || !strings.HasSuffix(htc.GetTypeUrl(), "envoy.extensions.filters.http.rbac.v3.RBAC") {
					continue
				}
				r := &httprbac.RBAC{}
				if err := htc.UnmarshalTo(r); err != nil {
					return false, trail, err
				}
				if r.GetMatcher() != nil {
					return false, trail, fmt.Errorf("%s: the unified matcher API is not read here", hf.GetName())
				}
				if err := apply(hf.GetName(), r.GetRules()); err != nil {
					return false, trail, err
				}
			}
		}
	}
	return allowed, trail, nil
}

func evalRBAC(r *rbacv3.RBAC, p rbacPeer, http bool) (bool, string, error) {
	matched := ""
	for _, name := range sortedKeys(r.GetPolicies()) {
		pol := r.GetPolicies()[name]
		if pol.GetCondition() != nil || pol.GetCheckedCondition() != nil {
			return false, "", fmt.Errorf("policy %s: CEL conditions are not read here", name)
		}
		pm, err := anyPermission(pol.GetPermissions(), p, http)
		if err != nil {
			return false, "", fmt.Errorf("policy %s: %v", name, err)
		}
		if !pm {
			continue
		}
		im, err := anyPrincipal(pol.GetPrincipals(), p, http)
		if err != nil {
			return false, "", fmt.Errorf("policy %s: %v", name, err)
		}
		if im {
			matched = name
			break
		}
	}
	switch r.GetAction() {
	case rbacv3.RBAC_ALLOW:
		return matched != "", matched, nil
	case rbacv3.RBAC_DENY:
		return matched == "", matched, nil
	case rbacv3.RBAC_LOG:
		return true, matched, nil
	}
	return false, "", fmt.Errorf("RBAC action %v", r.GetAction())
}

func anyPermission(ps []*rbacv3.Permission, p rbacPeer, http bool) (bool, error) {
	for _, x := range ps {
		ok, err := permission(x, p, http)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func permission(x *rbacv3.Permission, p rbacPeer, http bool) (bool, error) {
	switch r := x.GetRule().(type) {
	case *rbacv3.Permission_Any:
		return r.Any, nil
	case *rbacv3.Permission_AndRules:
		for _, y := range r.AndRules.GetRules() {
			ok, err := permission(y, p, http)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case *rbacv3.Permission_OrRules:
		return anyPermission(r.OrRules.GetRules(), p, http)
	case *rbacv3.Permission_NotRule:
		ok, err := permission(r.NotRule, p, http)
		return !ok, err
	case *rbacv3.Permission_DestinationPort:
		return r.DestinationPort == p.port, nil
	case *rbacv3.Permission_DestinationPortRange:
		return int32(p.port) >= r.DestinationPortRange.GetStart() && int32(p.port) < r.DestinationPortRange.GetEnd(), nil
	case *rbacv3.Permission_Header:
		if !http {
			return false, nil // Envoy: header matchers never match in the network filter
		}
		return header(r.Header, p.headers)
	case *rbacv3.Permission_UrlPath:
		if !http {
			return false, nil
		}
		path := strings.SplitN(p.headers[":path"], "?", 2)[0]
		return str(r.UrlPath.GetPath(), path)
	}
	return false, fmt.Errorf("permission %T is not read here", x.GetRule())
}

func anyPrincipal(ids []*rbacv3.Principal, p rbacPeer, http bool) (bool, error) {
	for _, x := range ids {
		ok, err := principal(x, p, http)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func principal(x *rbacv3.Principal, p rbacPeer, http bool) (bool, error) {
	switch r := x.GetIdentifier().(type) {
	case *rbacv3.Principal_Any:
		return r.Any, nil
	case *rbacv3.Principal_AndIds:
		for _, y := range r.AndIds.GetIds() {
			ok, err := principal(y, p, http)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case *rbacv3.Principal_OrIds:
		return anyPrincipal(r.OrIds.GetIds(), p, http)
	case *rbacv3.Principal_NotId:
		ok, err := principal(r.NotId, p, http)
		return !ok, err
	case *rbacv3.Principal_Authenticated_:
		if p.principal == "" {
			return false, nil // no peer certificate
		}
		if r.Authenticated.GetPrincipalName() == nil {
			return true, nil
		}
		return str(r.Authenticated.GetPrincipalName(), p.principal)
	case *rbacv3.Principal_FilterState:
		if r.FilterState.GetKey() != "io.istio.peer_principal" {
			return false, fmt.Errorf("filter state %q is not read here", r.FilterState.GetKey())
		}
		if p.principal == "" {
			return false, nil
		}
		return str(r.FilterState.GetStringMatch(), p.principal)
	case *rbacv3.Principal_SourceIp:
		return cidr(r.SourceIp, p.ip), nil
	case *rbacv3.Principal_DirectRemoteIp:
		return cidr(r.DirectRemoteIp, p.ip), nil
	case *rbacv3.Principal_RemoteIp:
		return cidr(r.RemoteIp, p.ip), nil
	case *rbacv3.Principal_Header:
		if !http {
			return false, nil
		}
		return header(r.Header, p.headers)
	case *rbacv3.Principal_UrlPath:
		if !http {
			return false, nil
		}
		return str(r.UrlPath.GetPath(), strings.SplitN(p.headers[":path"], "?", 2)[0])
	}
	return false, fmt.Errorf("principal %T is not read here", x.GetIdentifier())
}

func cidr(c *envoycore.CidrRange, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	pfx, err := netip.ParseAddr(c.GetAddressPrefix())
	if err != nil {
		return false
	}
	bits := int(c.GetPrefixLen().GetValue())
	if c.GetPrefixLen() == nil {
		bits = pfx.BitLen()
	}
	n, err := pfx.Prefix(bits)
	return err == nil && n.Contains(a)
}

func header(h *routev3.HeaderMatcher, headers map[string]string) (bool, error) {
	val, present := headers[h.GetName()]
	present = present && val != ""
	var ok bool
	var err error
	switch m := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_PresentMatch:
		ok = present == m.PresentMatch
	case *routev3.HeaderMatcher_StringMatch:
		if present {
			ok, err = str(m.StringMatch, val)
		}
	case *routev3.HeaderMatcher_ExactMatch:
		ok = present && val == m.ExactMatch
	case *routev3.HeaderMatcher_PrefixMatch:
		ok = present && strings.HasPrefix(val, m.PrefixMatch)
	case *routev3.HeaderMatcher_SuffixMatch:
		ok = present && strings.HasSuffix(val, m.SuffixMatch)
	default:
		return false, fmt.Errorf("header matcher %T is not read here", h.GetHeaderMatchSpecifier())
	}
	if err != nil {
		return false, err
	}
	if h.GetInvertMatch() {
		ok = !ok
	}
	return ok, nil
}

func str(m *matcherv3.StringMatcher, v string) (bool, error) {
	if m == nil {
		return false, fmt.Errorf("empty string matcher")
	}
	lower := func(s string) string {
		if m.GetIgnoreCase() {
			return strings.ToLower(s)
		}
		return s
	}
	a := lower(v)
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return a == lower(p.Exact), nil
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(a, lower(p.Prefix)), nil
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(a, lower(p.Suffix)), nil
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(a, lower(p.Contains)), nil
	case *matcherv3.StringMatcher_SafeRegex:
		// Envoy's RE2 and Go's regexp share the syntax; the match is a full match
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		if err != nil {
			return false, err
		}
		return re.MatchString(v), nil
	}
	return false, fmt.Errorf("string matcher %T is not read here", m.GetMatchPattern())
}
