// A downstream consumer outside Go: reads Tributary's topics with the standard Kafka and Avro Java
// libraries and our .avsc files alone, and prints each record as JSON, one per line.
//
//   java -cp 'classes:libs/*' ReadTopics BROKERS COUNT TOPIC=SCHEMA.avsc[,OLDER.avsc...] [TOPIC=...]
//
// Avro single-object encoding (C3 01 + CRC-64-AVRO fingerprint) is what BinaryMessageDecoder
// reads natively: it checks the header and the fingerprint against the schema it was given, and
// against each older schema added to it (addSchema), whose data Avro resolves to the first
// schema. The metrics topic needs metric.avsc,metric.v1.avsc: metrics of one value are written
// with v1.
import java.io.File;
import java.time.Duration;
import java.util.*;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class ReadTopics {
  public static void main(String[] args) throws Exception {
    String brokers = args[0];
    int want = Integer.parseInt(args[1]);
    Map<String, BinaryMessageDecoder<GenericRecord>> decoders = new HashMap<>();
    for (int i = 2; i < args.length; i++) {
      String[] kv = args[i].split("=", 2);
      String[] files = kv[1].split(",");
      Schema schema = new Schema.Parser().parse(new File(files[0]));
      BinaryMessageDecoder<GenericRecord> decoder = new BinaryMessageDecoder<>(GenericData.get(), schema);
      for (int j = 1; j < files.length; j++) {
        decoder.addSchema(new Schema.Parser().parse(new File(files[j])));
      }
      decoders.put(kv[0], decoder);
    }
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    p.put(ConsumerConfig.GROUP_ID_CONFIG, "interop-" + UUID.randomUUID());
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    int seen = 0;
    long deadline = System.currentTimeMillis() + 60_000;
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
      c.subscribe(decoders.keySet());
      while (seen < want && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
          GenericRecord rec = decoders.get(r.topic()).decode(r.value());
          System.out.println("{\"topic\":\"" + r.topic() + "\",\"record\":" + rec + "}");
          seen++;
        }
      }
    }
    if (seen < want) {
      System.err.println("read " + seen + " of " + want + " records");
      System.exit(1);
    }
  }
}
