package docscheck

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/schemas"
)

// javaMain wraps a Java block: the block sees record, a Kafka ConsumerRecord whose value is an
// event as Tributary writes it, and declares event, which is printed.
const javaMain = `import java.io.File;
import java.nio.file.*;
import org.apache.avro.Schema;
import org.apache.avro.generic.*;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.kafka.clients.consumer.ConsumerRecord;

public class DocBlock {
  public static void main(String[] args) throws Exception {
    ConsumerRecord<byte[], byte[]> record = new ConsumerRecord<>("tributary.events.v1", 0, 0L, null, Files.readAllBytes(Path.of(args[0])));
%s
    System.out.println(event);
  }
}
`

// Every Java block in docs/ compiles against Apache Avro and kafka-clients (deploy/interop's
// libraries) and decodes an event as Tributary encodes it, run from the repository root.
func TestJavaBlocksRun(t *testing.T) {
	blocks := blocksIn(t, "java")
	if countIn(blocks, "docs/downstream.md") == 0 {
		t.Fatal("docs/downstream.md has no Java block")
	}
	root := testenv.RepoRoot(t)
	build := exec.Command("bash", filepath.Join(root, "deploy/interop/build.sh"))
	var stderr bytes.Buffer
	build.Stderr = &stderr
	cp, err := build.Output()
	if err != nil {
		t.Fatalf("deploy/interop/build.sh: %v\n%s", err, stderr.String())
	}
	codec, err := schemas.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	value, err := codec.AppendEvent(nil, &schemas.Event{EventID: "doc-java-1", Type: "node_failed", Name: "LoadNode Failed",
		Timestamp: time.Date(2025, 1, 15, 10, 0, 2, 0, time.UTC), Attributes: map[string]any{"node_id": "load_1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, b := range blocks {
		dir := t.TempDir()
		src := filepath.Join(dir, "DocBlock.java")
		if err := os.WriteFile(src, []byte(strings.Replace(javaMain, "%s", b.code, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "event.bin"), value, 0o644); err != nil {
			t.Fatal(err)
		}
		classpath := strings.TrimSpace(string(cp))
		if out, err := exec.CommandContext(ctx, "javac", "-d", dir, "-cp", classpath, src).CombinedOutput(); err != nil {
			t.Errorf("%s does not compile: %v\n%s\n%s", b, err, out, b.code)
			continue
		}
		run := exec.CommandContext(ctx, "java", "-cp", dir+":"+classpath, "DocBlock", filepath.Join(dir, "event.bin"))
		run.Dir = root
		out, err := run.CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"event_id": "doc-java-1"`) || !strings.Contains(string(out), `"node_id": {"v": "load_1"}`) {
			t.Errorf("%s: %v, printed\n%s", b, err, out)
		}
	}
}
