package cri

import (
	"encoding/json"
	"strconv"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod sandbox and each of its containers are engine containers; what the
// CRI needs to know about them lives in their labels, so the engine's bbolt
// record keeps it across restarts and `skiff ps` shows it. The request's own
// labels are set as they are too (the kubelet's io.kubernetes.* ones among
// them), and kept exactly in labelLabels, since images add labels of their
// own to a container's.
const (
	labelKind        = "io.skiff.cri.kind" // kindSandbox or kindContainer
	labelSandbox     = "io.skiff.cri.sandbox-id"
	labelName        = "io.skiff.cri.name"
	labelNamespace   = "io.skiff.cri.namespace"
	labelUID         = "io.skiff.cri.uid"
	labelAttempt     = "io.skiff.cri.attempt"
	labelLabels      = "io.skiff.cri.labels"      // JSON of the request's labels
	labelAnnotations = "io.skiff.cri.annotations" // JSON of the request's annotations
	labelImage       = "io.skiff.cri.image"       // the image as the request named it
	labelLogPath     = "io.skiff.cri.log-path"    // a container's CRI log file
	labelLogDir      = "io.skiff.cri.log-dir"     // a sandbox's LogDirectory
	labelNamespaces  = "io.skiff.cri.namespaces"  // JSON NamespaceOption of a sandbox
	labelMounts      = "io.skiff.cri.mounts"      // JSON of a container's requested mounts

	kindSandbox   = "sandbox"
	kindContainer = "container"
)

// criLabels are the engine labels for an object with the given request
// labels and annotations.
func criLabels(kind string, labels, annotations map[string]string) map[string]string {
	out := map[string]string{labelKind: kind}
	for k, v := range labels {
		out[k] = v
	}
	b, _ := json.Marshal(labels)
	out[labelLabels] = string(b)
	b, _ = json.Marshal(annotations)
	out[labelAnnotations] = string(b)
	return out
}

func jsonMap(s string) map[string]string {
	m := map[string]string{}
	json.Unmarshal([]byte(s), &m)
	return m
}

func attemptOf(labels map[string]string) uint32 {
	n, _ := strconv.ParseUint(labels[labelAttempt], 10, 32)
	return uint32(n)
}

func sandboxMetadata(l map[string]string) *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: l[labelName], Namespace: l[labelNamespace], Uid: l[labelUID], Attempt: attemptOf(l)}
}

func containerMetadata(l map[string]string) *runtimeapi.ContainerMetadata {
	return &runtimeapi.ContainerMetadata{Name: l[labelName], Attempt: attemptOf(l)}
}

// matchSelector: every key=value of sel is among the request labels.
func matchSelector(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
