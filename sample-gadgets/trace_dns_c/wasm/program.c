/* The WASM module of trace_dns_c, in C against the SDK's <gadget/wasm.h>: each datagram
 * of "sends" that holds a DNS query gets is_dns = true, and the query (id, name, type)
 * goes out as an event of a data source the module creates, "queries". */
#include <stdio.h>
#include <string.h>
#include <gadget/wasm.h>

#define PAYLOAD_MAX 128

static gadget_field_t payload_f, len_f, pid_f, comm_f, is_dns_f;
static gadget_ds_t queries;
static gadget_field_t q_id, q_response, q_name, q_type, q_pid, q_comm;

static const char *type_name(uint16_t t, char *buf, size_t cap)
{
	switch (t) {
	case 1: return "A";
	case 2: return "NS";
	case 5: return "CNAME";
	case 6: return "SOA";
	case 12: return "PTR";
	case 15: return "MX";
	case 16: return "TXT";
	case 28: return "AAAA";
	case 33: return "SRV";
	case 65: return "HTTPS";
	}
	snprintf(buf, cap, "TYPE%u", t);
	return buf;
}

/* The question's name at msg[off]: labels joined with dots. The offset after it, or -1
 * when it is not a plain name (questions have no compression pointers). */
static int parse_name(const uint8_t *msg, int len, int off, char *out, int cap)
{
	int o = 0;
	while (off < len) {
		int n = msg[off++];
		if (n == 0) {
			out[o] = 0;
			return o > 0 ? off : -1;
		}
		if (n > 63 || off + n > len || o + n + 2 > cap)
			return -1;
		if (o)
			out[o++] = '.';
		memcpy(out + o, msg + off, n);
		o += n;
		off += n;
	}
	return -1;
}

static void on_send(gadget_ds_t ds, gadget_data_t d)
{
	uint8_t msg[PAYLOAD_MAX];
	char name[PAYLOAD_MAX], comm[16], tbuf[16];
	int got = gadget_field_bytes(payload_f, d, msg, sizeof msg);
	int n = (int)gadget_field_u32(len_f, d, NULL);

	if (got < 0)
		return;
	if (n > got)
		n = got;
	/* header: id, flags, 4 counts; then one question: name, type, class */
	int ok = n >= 12 && (msg[4] << 8 | msg[5]) >= 1;
	int off = ok ? parse_name(msg, n, 12, name, sizeof name) : -1;
	ok = off > 0 && off + 4 <= n;
	gadget_field_set_bool(is_dns_f, d, ok);
	if (!ok)
		return;

	gadget_packet_t q = gadget_packet_new(queries);
	gadget_field_set_u16(q_id, q, (uint16_t)(msg[0] << 8 | msg[1]));
	gadget_field_set_bool(q_response, q, msg[2] & 0x80);
	gadget_field_set_string(q_name, q, name);
	gadget_field_set_string(q_type, q, type_name((uint16_t)(msg[off] << 8 | msg[off + 1]), tbuf, sizeof tbuf));
	gadget_field_set_u32(q_pid, q, gadget_field_u32(pid_f, d, NULL));
	gadget_field_string(comm_f, d, comm, sizeof comm);
	gadget_field_set_string(q_comm, q, comm);
	gadget_emit(queries, q);
}

GADGET_LIFECYCLE(gadgetInit)
{
	gadget_ds_t sends = gadget_get_datasource("sends");
	if (!sends) {
		gadget_log(GADGET_LOG_ERROR, "no data source 'sends'");
		return 1;
	}
	payload_f = gadget_get_field(sends, "payload");
	len_f = gadget_get_field(sends, "len");
	pid_f = gadget_get_field(sends, "proc.pid");
	comm_f = gadget_get_field(sends, "proc.comm");
	is_dns_f = gadget_add_field(sends, "is_dns", GADGET_KIND_BOOL);

	queries = gadget_new_datasource("queries", GADGET_DS_SINGLE);
	q_id = gadget_add_field(queries, "id", GADGET_KIND_UINT16);
	q_response = gadget_add_field(queries, "response", GADGET_KIND_BOOL);
	q_name = gadget_add_field(queries, "name", GADGET_KIND_STRING);
	q_type = gadget_add_field(queries, "qtype", GADGET_KIND_STRING);
	q_pid = gadget_add_field(queries, "pid", GADGET_KIND_UINT32);
	q_comm = gadget_add_field(queries, "comm", GADGET_KIND_STRING);
	if (!payload_f || !len_f || !pid_f || !comm_f || !is_dns_f || !queries || !q_comm)
		return 1;
	return gadget_subscribe(sends, GADGET_SUB_DATA, 0, on_send);
}
