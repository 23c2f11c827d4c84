package charttest

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// TestExistingSecrets: with existingSecret everywhere the chart makes no
// Secret; passwords reach weft as the WEFT_* variables it reads, keys and
// tokens as files whose paths the rendered config names.
func TestExistingSecrets(t *testing.T) {
	r := render(t, readValues(t, filepath.Join(chartDir, "ci", "production-values.yaml")))
	if s := r.ofKind("Secret"); len(s) != 0 {
		t.Errorf("a Secret was rendered although every secret is an existing one: %v", r.names())
	}
	sts := mustDecode[appsv1.StatefulSet](t, r.find(t, "StatefulSet", fullname))
	c := sts.Spec.Template.Spec.Containers[0]
	for env, ref := range map[string][2]string{
		"WEFT_KAFKA_SASL_PASSWORD": {"weft", "password"},
		"WEFT_CLICKHOUSE_PASSWORD": {"weft-clickhouse", "password"},
	} {
		e := envVar(c, env)
		if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Name != ref[0] || e.ValueFrom.SecretKeyRef.Key != ref[1] {
			t.Errorf("%s: %+v, want secretKeyRef %s/%s", env, e, ref[0], ref[1])
		}
	}
	if e := envVar(c, "WEFT_REPLAY_KAFKA_SASL_PASSWORD"); e != nil {
		t.Errorf("replay's password set though secrets.replayKafka is empty: %+v", e)
	}
	if envVar(c, "WEFT_ONCALL_WEBHOOK_URL") == nil {
		t.Error("extraEnv dropped")
	}
	// Files: each config key names a file the projected volume provides.
	files := projectedFiles(t, sts.Spec.Template.Spec, c)
	cfg := renderedConfig(t, r)
	for _, f := range []struct {
		path             []string
		secret, key, out string
	}{
		{[]string{"http", "auth", "tokens_file"}, "weft-api-tokens", "tokens.yaml", "/etc/weft/secrets/api-tokens/tokens.yaml"},
		{[]string{"audit", "signing_key_file"}, "weft-audit-keys", "signing.key", "/etc/weft/secrets/audit-signing-key/signing.key"},
		{[]string{"audit", "source_key_file"}, "weft-audit-keys", "source.key", "/etc/weft/secrets/audit-source-key/source.key"},
		{[]string{"tracing", "id_key_file"}, "weft-tracing", "id.key", "/etc/weft/secrets/tracing-id-key/id.key"},
	} {
		got, _ := dig(cfg, f.path...).(string)
		if got != f.out {
			t.Errorf("config %s = %q, want %q", strings.Join(f.path, "."), got, f.out)
		}
		if src := files[got]; src != f.secret+"/"+f.key {
			t.Errorf("%s: mounted from %q, want %s/%s", got, src, f.secret, f.key)
		}
	}
	// The user's config survives the chart's additions.
	if dig(cfg, "http", "auth", "oidc", "issuer") != "https://login.example.com/realms/shop" || dig(cfg, "audit", "cluster_id") != "prod-eu-1" {
		t.Errorf("user config lost: %v", cfg)
	}
}

// projectedFiles maps each file of the secrets volume, as the container
// sees it, to "secret/key".
func projectedFiles(t *testing.T, spec corev1.PodSpec, c corev1.Container) map[string]string {
	t.Helper()
	mount := ""
	for _, m := range c.VolumeMounts {
		if m.Name == "secrets" {
			mount = m.MountPath
			if !m.ReadOnly {
				t.Error("secrets mounted read-write")
			}
		}
	}
	files := map[string]string{}
	for _, v := range spec.Volumes {
		if v.Name != "secrets" || v.Projected == nil {
			continue
		}
		if m := v.Projected.DefaultMode; m == nil || *m&0o007 != 0 {
			t.Errorf("secret files readable by others: mode %v", m)
		}
		for _, s := range v.Projected.Sources {
			for _, it := range s.Secret.Items {
				files[mount+"/"+it.Path] = s.Secret.Name + "/" + it.Key
			}
		}
	}
	if mount == "" || len(files) == 0 {
		t.Fatal("no secrets volume")
	}
	return files
}

// TestCreatedSecrets: secret values given for a quick start go into the
// chart's own Secret, never into the ConfigMap, and rotating one rolls the
// pods (checksum/secret).
func TestCreatedSecrets(t *testing.T) {
	vals := readValues(t, filepath.Join(chartDir, "ci", "quickstart-values.yaml"))
	r := render(t, vals)
	sec := mustDecode[corev1.Secret](t, r.find(t, "Secret", fullname+"-secrets"))
	if string(sec.Data["kafka-password"]) != "quickstart-kafka-password" || string(sec.Data["clickhouse-password"]) != "quickstart-clickhouse-password" {
		t.Errorf("Secret data: %v", sec.Data)
	}
	if tok := string(sec.Data["apiTokens-tokens.yaml"]); !strings.Contains(tok, "name: oncall") || !strings.Contains(tok, "sha256:2c26b46b") {
		t.Errorf("tokens file: %q", tok)
	}
	cm := mustDecode[corev1.ConfigMap](t, r.find(t, "ConfigMap", fullname))
	for _, secret := range []string{"quickstart-kafka-password", "quickstart-clickhouse-password", "password:"} {
		if strings.Contains(cm.Data["weft.yaml"], secret) {
			t.Errorf("the ConfigMap holds %q:\n%s", secret, cm.Data["weft.yaml"])
		}
	}
	sts := mustDecode[appsv1.StatefulSet](t, r.find(t, "StatefulSet", fullname))
	c := sts.Spec.Template.Spec.Containers[0]
	if e := envVar(c, "WEFT_KAFKA_SASL_PASSWORD"); e == nil || e.ValueFrom.SecretKeyRef.Name != sec.Name || e.ValueFrom.SecretKeyRef.Key != "kafka-password" {
		t.Errorf("WEFT_KAFKA_SASL_PASSWORD: %+v", e)
	}
	if got := dig(renderedConfig(t, r), "http", "auth", "tokens_file"); projectedFiles(t, sts.Spec.Template.Spec, c)[got.(string)] != sec.Name+"/apiTokens-tokens.yaml" {
		t.Errorf("tokens_file %v is not the Secret's tokens", got)
	}
	before := sts.Spec.Template.Annotations["checksum/secret"]
	if before == "" {
		t.Fatal("no checksum/secret annotation")
	}
	vals["secrets"].(map[string]any)["kafka"].(map[string]any)["value"] = "rotated"
	after := mustDecode[appsv1.StatefulSet](t, render(t, vals).find(t, "StatefulSet", fullname)).Spec.Template.Annotations["checksum/secret"]
	if after == before {
		t.Error("checksum/secret did not change with the password")
	}
}

// TestPasswordInConfigRefused: a password under config would land in the
// ConfigMap; the chart refuses it and names the key.
func TestPasswordInConfigRefused(t *testing.T) {
	for _, path := range []string{"kafka.sasl.password", "clickhouse.password", "replay.kafka.sasl.password"} {
		t.Run(path, func(t *testing.T) {
			keys := strings.Split(path, ".")
			doc := "config:\n"
			for i, k := range keys {
				doc += strings.Repeat("  ", i+1) + k + ":"
				if i == len(keys)-1 {
					doc += " hunter2"
				}
				doc += "\n"
			}
			_, err := tryRender(t, valuesYAML(t, doc))
			if err == nil || !strings.Contains(err.Error(), "config."+path) {
				t.Fatalf("rendered a password into the ConfigMap, or the error does not name config.%s: %v", path, err)
			}
		})
	}
}

// TestChecksumFollowsConfig: a config change rolls the pods (weft reads its
// config at start); a change outside the config does not change the sum.
func TestChecksumFollowsConfig(t *testing.T) {
	sum := func(doc string) string {
		sts := mustDecode[appsv1.StatefulSet](t, render(t, valuesYAML(t, doc)).find(t, "StatefulSet", fullname))
		return sts.Spec.Template.Annotations["checksum/config"]
	}
	base := sum("{}")
	if len(base) != 64 {
		t.Fatalf("checksum/config %q is not a sha256", base)
	}
	if sum("config: {log: {level: debug}}") == base {
		t.Error("checksum/config unchanged by config.log.level")
	}
	if sum("secrets: {auditSigningKey: {existingSecret: keys}}") == base {
		t.Error("checksum/config unchanged when the chart adds audit.signing_key_file")
	}
	if sum("podLabels: {team: shop}") != base {
		t.Error("checksum/config changed by a pod label")
	}
}
