// The metadata-service block in Docker's DOCKER-USER chain, over raw nfnetlink (no
// libmnl/libnftnl: they have no static library in Debian, and the binary is static).
// The rule's expressions are the ones iptables-nft generates for
// `-d ADDR -m comment --comment "..." -j DROP` (docs/platform.md), so iptables-nft, which
// Docker itself calls, lists and parses it.

#include "kasm_bootstrap/net/metadata_firewall.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"

#include <arpa/inet.h>
#include <endian.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <vector>

namespace kb::net {
namespace {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

constexpr std::string_view kFilterTable = "filter";
constexpr std::string_view kDockerUserChain = "DOCKER-USER";
constexpr std::uint8_t kUdataRuleComment = 0; // NFTNL_UDATA_RULE_COMMENT (docs/platform.md)
constexpr std::chrono::seconds kKernelReplyTimeout{3};
constexpr std::size_t kNetlinkReceiveSize = 65536; // a dump datagram is at most 32 KiB (docs/platform.md)
constexpr std::string_view kNoIpv6Chain = ": IPv6 skipped (Docker's ip6tables is off)";

struct FamilySpec {
  const char* name;     // "ip" | "ip6"
  std::uint8_t nfproto; // NFPROTO_IPV4 | NFPROTO_IPV6
  std::uint32_t daddr_offset;
  std::string_view address;
  int address_family;      // AF_INET | AF_INET6
  std::string_view prefix; // as iptables prints it
};

// offsetof(struct iphdr, daddr) = 16; offsetof(struct ip6_hdr, ip6_dst) = 24.
const FamilySpec kIpv4Family{"ip", NFPROTO_IPV4, 16, kMetadataAddressV4, AF_INET, "/32"};
const FamilySpec kIpv6Family{"ip6", NFPROTO_IPV6, 24, kMetadataAddressV6, AF_INET6, "/128"};

Bytes address_bytes(const FamilySpec& f) {
  Bytes out(f.address_family == AF_INET ? 4 : 16);
  const std::string text(f.address);
  if (::inet_pton(f.address_family, text.c_str(), out.data()) != 1)
    throw Error(ExitCode::kInternal, "metadata firewall: cannot parse address " + text);
  return out;
}

// ---- building netlink messages --------------------------------------------------------

class NetlinkMessage {
public:
  NetlinkMessage(std::uint16_t type, std::uint16_t flags, std::uint32_t seq, std::uint8_t family,
                 std::uint16_t res_id_host_order) {
    buffer_.resize(NLMSG_HDRLEN);
    nlmsghdr header{};
    header.nlmsg_type = type;
    header.nlmsg_flags = flags;
    header.nlmsg_seq = seq;
    std::memcpy(buffer_.data(), &header, sizeof header);
    nfgenmsg gen{};
    gen.nfgen_family = family;
    gen.version = NFNETLINK_V0;
    gen.res_id = htons(res_id_host_order);
    append(&gen, sizeof gen);
  }

  void put(std::uint16_t type, const void* data, std::size_t length) {
    nlattr attr{};
    attr.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + length);
    attr.nla_type = type;
    append(&attr, sizeof attr);
    append(data, length);
  }
  void put_string(std::uint16_t type, std::string_view text) {
    std::string terminated(text);
    put(type, terminated.c_str(), terminated.size() + 1);
  }
  void put_be32(std::uint16_t type, std::uint32_t value) {
    const std::uint32_t be = htonl(value);
    put(type, &be, sizeof be);
  }
  void put_be64(std::uint16_t type, std::uint64_t value) {
    const std::uint64_t be = htobe64(value);
    put(type, &be, sizeof be);
  }
  // Nested attributes: open() returns where the header is; close() writes its length.
  std::size_t open(std::uint16_t type) {
    const std::size_t at = buffer_.size();
    nlattr attr{};
    attr.nla_type = static_cast<std::uint16_t>(type | NLA_F_NESTED);
    append(&attr, sizeof attr);
    return at;
  }
  void close(std::size_t at) {
    const auto length = static_cast<std::uint16_t>(buffer_.size() - at);
    std::memcpy(buffer_.data() + at, &length, sizeof length); // nla_len is the first member
  }

  Bytes finish() && {
    const auto length = static_cast<std::uint32_t>(buffer_.size());
    std::memcpy(buffer_.data(), &length, sizeof length); // nlmsg_len is the first member
    return std::move(buffer_);
  }

private:
  void append(const void* data, std::size_t length) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    buffer_.insert(buffer_.end(), p, p + length);
    buffer_.resize(NLA_ALIGN(buffer_.size()), 0);
  }
  Bytes buffer_;
};

std::uint16_t nft_type(int message) { return static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | message); }

void put_table_and_chain(NetlinkMessage& m, std::uint16_t table_attr, std::uint16_t chain_attr) {
  m.put_string(table_attr, kFilterTable);
  m.put_string(chain_attr, kDockerUserChain);
}

template <typename Fill> void put_expression(NetlinkMessage& m, std::string_view name, Fill fill) {
  const auto element = m.open(NFTA_LIST_ELEM);
  m.put_string(NFTA_EXPR_NAME, name);
  const auto data = m.open(NFTA_EXPR_DATA);
  fill(m);
  m.close(data);
  m.close(element);
}

Bytes rule_comment_udata() {
  // One TLV: type, length (with the NUL), the NUL-terminated comment.
  const std::size_t length = kMetadataRuleComment.size() + 1;
  static_assert(kMetadataRuleComment.size() + 1 <= 255, "a udata TLV length is one byte");
  Bytes udata(2 + length, 0);
  udata[0] = kUdataRuleComment;
  udata[1] = static_cast<std::uint8_t>(length);
  std::memcpy(udata.data() + 2, kMetadataRuleComment.data(), kMetadataRuleComment.size());
  return udata;
}

// NFT_MSG_NEWRULE without NLM_F_APPEND: the kernel puts the rule at the head of the chain.
Bytes new_rule_message(const FamilySpec& f, std::uint32_t seq) {
  NetlinkMessage m(nft_type(NFT_MSG_NEWRULE), NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, seq, f.nfproto, 0);
  put_table_and_chain(m, NFTA_RULE_TABLE, NFTA_RULE_CHAIN);
  const auto expressions = m.open(NFTA_RULE_EXPRESSIONS);
  put_expression(m, "payload", [&](NetlinkMessage& e) {
    e.put_be32(NFTA_PAYLOAD_DREG, NFT_REG_1);
    e.put_be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
    e.put_be32(NFTA_PAYLOAD_OFFSET, f.daddr_offset);
    e.put_be32(NFTA_PAYLOAD_LEN, f.address_family == AF_INET ? 4 : 16);
  });
  put_expression(m, "cmp", [&](NetlinkMessage& e) {
    e.put_be32(NFTA_CMP_SREG, NFT_REG_1);
    e.put_be32(NFTA_CMP_OP, NFT_CMP_EQ);
    const auto value = e.open(NFTA_CMP_DATA);
    const auto address = address_bytes(f);
    e.put(NFTA_DATA_VALUE, address.data(), address.size());
    e.close(value);
  });
  put_expression(m, "counter", [](NetlinkMessage& e) {
    e.put_be64(NFTA_COUNTER_BYTES, 0);
    e.put_be64(NFTA_COUNTER_PACKETS, 0);
  });
  put_expression(m, "immediate", [](NetlinkMessage& e) {
    e.put_be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
    const auto data = e.open(NFTA_IMMEDIATE_DATA);
    const auto verdict = e.open(NFTA_DATA_VERDICT);
    e.put_be32(NFTA_VERDICT_CODE, static_cast<std::uint32_t>(NF_DROP));
    e.close(verdict);
    e.close(data);
  });
  m.close(expressions);
  const auto udata = rule_comment_udata();
  m.put(NFTA_RULE_USERDATA, udata.data(), udata.size());
  return std::move(m).finish();
}

Bytes delete_rule_message(const FamilySpec& f, std::uint32_t seq, std::uint64_t handle) {
  NetlinkMessage m(nft_type(NFT_MSG_DELRULE), NLM_F_REQUEST | NLM_F_ACK, seq, f.nfproto, 0);
  put_table_and_chain(m, NFTA_RULE_TABLE, NFTA_RULE_CHAIN);
  m.put_be64(NFTA_RULE_HANDLE, handle);
  return std::move(m).finish();
}

Bytes batch_marker(std::uint16_t type, std::uint32_t seq) {
  return NetlinkMessage(type, NLM_F_REQUEST, seq, AF_UNSPEC, NFNL_SUBSYS_NFTABLES).finish();
}

// ---- reading netlink replies (every length checked against the datagram) -------------

struct Attribute {
  std::uint16_t type = 0;
  ByteView data;
};

std::vector<Attribute> parse_attributes(ByteView bytes) {
  std::vector<Attribute> out;
  std::size_t offset = 0;
  while (bytes.size() - offset >= NLA_HDRLEN) {
    nlattr attr{};
    std::memcpy(&attr, bytes.data() + offset, sizeof attr);
    if (attr.nla_len < NLA_HDRLEN || attr.nla_len > bytes.size() - offset) break; // malformed: stop here
    out.push_back({static_cast<std::uint16_t>(attr.nla_type & NLA_TYPE_MASK),
                   bytes.subspan(offset + NLA_HDRLEN, attr.nla_len - NLA_HDRLEN)});
    offset += std::min<std::size_t>(NLA_ALIGN(attr.nla_len), bytes.size() - offset);
  }
  return out;
}

std::optional<ByteView> find_attribute(const std::vector<Attribute>& attrs, std::uint16_t type) {
  for (const auto& a : attrs)
    if (a.type == type) return a.data;
  return std::nullopt;
}

std::string attribute_string(ByteView data) {
  std::string text(data.begin(), data.end());
  if (const auto nul = text.find('\0'); nul != std::string::npos) text.resize(nul);
  return text;
}

bool udata_has_our_comment(ByteView udata) {
  std::size_t offset = 0;
  while (udata.size() - offset >= 2) {
    const std::uint8_t type = udata[offset];
    const std::uint8_t length = udata[offset + 1];
    if (length > udata.size() - offset - 2) return false;
    if (type == kUdataRuleComment &&
        attribute_string(udata.subspan(offset + 2, length)) == std::string(kMetadataRuleComment))
      return true;
    offset += 2u + length;
  }
  return false;
}

// iptables-nft itself (1.8.9: docs/platform.md) writes `-m comment` as an xtables "comment"
// match expression, not as userdata: a rule an operator added with iptables is ours too.
bool expressions_have_our_comment(ByteView expressions) {
  for (const auto& element : parse_attributes(expressions)) {
    if (element.type != NFTA_LIST_ELEM) continue;
    const auto expr = parse_attributes(element.data);
    const auto name = find_attribute(expr, NFTA_EXPR_NAME);
    const auto data = find_attribute(expr, NFTA_EXPR_DATA);
    if (!name || !data || attribute_string(*name) != "match") continue;
    const auto match = parse_attributes(*data);
    const auto match_name = find_attribute(match, NFTA_MATCH_NAME);
    const auto info = find_attribute(match, NFTA_MATCH_INFO);
    if (match_name && info && attribute_string(*match_name) == "comment" &&
        attribute_string(*info) == kMetadataRuleComment)
      return true;
  }
  return false;
}

struct RuleEntry {
  std::uint64_t handle = 0;
  bool ours = false;
};

class NetfilterSocket {
public:
  NetfilterSocket() : fd_(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER)) {
    if (!fd_) throw failure("opening a NETLINK_NETFILTER socket", errno);
    timeval timeout{};
    timeout.tv_sec = kKernelReplyTimeout.count();
    if (::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0 ||
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) != 0)
      throw failure("setting the netlink socket timeouts", errno);
    const int on = 1; // errors carry the kernel's message, not a copy of our request
    ::setsockopt(fd_.get(), SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
    ::setsockopt(fd_.get(), SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on);
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0)
      throw failure("binding the netlink socket", errno);
    seq_ = static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }

  std::uint32_t next_seq() { return ++seq_; }

  // Sends `request` and reads the answers to sequence numbers [first, last] until the
  // ack of `final_seq` (or, for a dump, NLMSG_DONE). Data messages go to `on_message`.
  // Returns 0 or the errno the kernel answered with; `kernel_message` gets its text.
  int exchange(const Bytes& request, std::uint32_t first, std::uint32_t last, std::uint32_t final_seq, bool dump,
               const std::string& what, const std::function<void(std::uint16_t, ByteView)>& on_message,
               std::string* kernel_message = nullptr) {
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    const auto sent = ::sendto(fd_.get(), request.data(), request.size(), 0, reinterpret_cast<const sockaddr*>(&kernel),
                               sizeof kernel);
    if (sent < 0) {
      const int err = errno; // before the message is built: that allocates
      throw failure(what + ": sending the request", err);
    }
    if (static_cast<std::size_t>(sent) != request.size()) throw failure(what + ": the request was cut short", EMSGSIZE);

    Bytes buffer(kNetlinkReceiveSize);
    const auto deadline = std::chrono::steady_clock::now() + 4 * kKernelReplyTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      sockaddr_nl from{};
      socklen_t from_length = sizeof from;
      const auto got = ::recvfrom(fd_.get(), buffer.data(), buffer.size(), MSG_TRUNC,
                                  reinterpret_cast<sockaddr*>(&from), &from_length);
      const int err = got < 0 ? errno : 0;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK)
        throw Error(ExitCode::kDocker, "metadata firewall: " + what + ": no answer from the kernel within " +
                                           std::to_string(kKernelReplyTimeout.count()) + " s");
      if (got < 0) throw failure(what + ": reading the answer", err);
      if (static_cast<std::size_t>(got) > buffer.size())
        throw Error(ExitCode::kDocker, "metadata firewall: " + what + ": an answer of " + std::to_string(got) +
                                           " bytes is larger than the receive buffer");
      if (from.nl_pid != 0) continue; // not from the kernel
      const ByteView datagram(buffer.data(), static_cast<std::size_t>(got));
      if (const auto result = walk(datagram, first, last, final_seq, dump, what, on_message, kernel_message))
        return *result;
    }
    throw Error(ExitCode::kDocker, "metadata firewall: " + what + ": the kernel's answer did not end");
  }

  // `what` is a view so that a literal costs no allocation before errno is read.
  static Error failure(std::string_view what, int err) {
    std::string text = "metadata firewall: " + std::string(what) + ": " + util::errno_text(err);
    if (err == EPERM) text += " (nf_tables needs CAP_NET_ADMIN: run as root)";
    return Error(ExitCode::kDocker, text);
  }

private:
  static std::optional<int> walk(ByteView datagram, std::uint32_t first, std::uint32_t last, std::uint32_t final_seq,
                                 bool dump, const std::string& what,
                                 const std::function<void(std::uint16_t, ByteView)>& on_message,
                                 std::string* kernel_message) {
    std::size_t offset = 0;
    while (datagram.size() - offset >= NLMSG_HDRLEN) {
      nlmsghdr header{};
      std::memcpy(&header, datagram.data() + offset, sizeof header);
      if (header.nlmsg_len < NLMSG_HDRLEN || header.nlmsg_len > datagram.size() - offset)
        throw Error(ExitCode::kDocker, "metadata firewall: " + what + ": malformed netlink answer (message length " +
                                           std::to_string(header.nlmsg_len) + ")");
      const auto payload = datagram.subspan(offset + NLMSG_HDRLEN, header.nlmsg_len - NLMSG_HDRLEN);
      offset += std::min<std::size_t>(NLMSG_ALIGN(header.nlmsg_len), datagram.size() - offset);
      if (header.nlmsg_seq < first || header.nlmsg_seq > last) continue; // an earlier exchange's leftovers
      if (header.nlmsg_type == NLMSG_ERROR) {
        if (payload.size() < sizeof(int))
          throw Error(ExitCode::kDocker, "metadata firewall: " + what + ": truncated netlink error");
        int error = 0;
        std::memcpy(&error, payload.data(), sizeof error);
        if (error != 0) {
          if (kernel_message && (header.nlmsg_flags & NLM_F_ACK_TLVS) && payload.size() >= sizeof(nlmsgerr)) {
            // With NETLINK_CAP_ACK the original request is not echoed: TLVs follow nlmsgerr.
            const auto tlvs = parse_attributes(payload.subspan(sizeof(nlmsgerr)));
            if (const auto text = find_attribute(tlvs, NLMSGERR_ATTR_MSG)) *kernel_message = attribute_string(*text);
          }
          return error < 0 ? -error : error;
        }
        if (header.nlmsg_seq == final_seq) return 0;
        continue;
      }
      if (header.nlmsg_type == NLMSG_DONE) {
        int error = 0;
        if (payload.size() >= sizeof error) std::memcpy(&error, payload.data(), sizeof error);
        if (dump) return error < 0 ? -error : 0;
        continue;
      }
      if (header.nlmsg_type == NLMSG_NOOP || header.nlmsg_type == NLMSG_OVERRUN) continue;
      on_message(header.nlmsg_type, payload);
    }
    return std::nullopt;
  }

  sys::UniqueFd fd_;
  std::uint32_t seq_ = 0;
};

std::string family_label(const FamilySpec& f) { return "nftables table " + std::string(f.name) + " filter"; }

// "metadata firewall: <what>: <errno text> (<kernel's message>)", with the fix for EPERM.
Error kernel_refused(const std::string& what, int err, const std::string& kernel_message) {
  std::string text = "metadata firewall: " + what + ": " + util::errno_text(err);
  if (!kernel_message.empty()) text += " (" + kernel_message + ")";
  if (err == EPERM) text += " (nf_tables needs CAP_NET_ADMIN: run as root)";
  return Error(ExitCode::kDocker, text);
}

// Whether table filter / chain DOCKER-USER exists in this family: 0, ENOENT, or an error.
bool has_docker_user_chain(NetfilterSocket& nl, const FamilySpec& f) {
  const auto seq = nl.next_seq();
  NetlinkMessage m(nft_type(NFT_MSG_GETCHAIN), NLM_F_REQUEST | NLM_F_ACK, seq, f.nfproto, 0);
  put_table_and_chain(m, NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME);
  std::string kernel_message;
  const auto what = "looking up chain DOCKER-USER in " + family_label(f);
  const int err = nl.exchange(
      std::move(m).finish(), seq, seq, seq, false, what, [](std::uint16_t, ByteView) {}, &kernel_message);
  if (err == ENOENT) return false;
  if (err != 0) throw kernel_refused(what, err, kernel_message);
  return true;
}

std::vector<RuleEntry> list_rules(NetfilterSocket& nl, const FamilySpec& f) {
  const auto seq = nl.next_seq();
  NetlinkMessage m(nft_type(NFT_MSG_GETRULE), NLM_F_REQUEST | NLM_F_DUMP, seq, f.nfproto, 0);
  put_table_and_chain(m, NFTA_RULE_TABLE, NFTA_RULE_CHAIN);
  std::vector<RuleEntry> rules;
  std::string kernel_message;
  const auto what = "listing the rules of chain DOCKER-USER in " + family_label(f);
  const int err = nl.exchange(
      std::move(m).finish(), seq, seq, seq, true, what,
      [&](std::uint16_t type, ByteView payload) {
        if (type != nft_type(NFT_MSG_NEWRULE) || payload.size() < sizeof(nfgenmsg)) return;
        nfgenmsg gen{};
        std::memcpy(&gen, payload.data(), sizeof gen);
        if (gen.nfgen_family != f.nfproto) return;
        const auto attrs = parse_attributes(payload.subspan(NLA_ALIGN(sizeof(nfgenmsg))));
        // Old kernels ignore the dump filter: keep only this table's chain.
        const auto table = find_attribute(attrs, NFTA_RULE_TABLE);
        const auto chain = find_attribute(attrs, NFTA_RULE_CHAIN);
        if (!table || !chain || attribute_string(*table) != kFilterTable ||
            attribute_string(*chain) != kDockerUserChain)
          return;
        RuleEntry entry;
        if (const auto handle = find_attribute(attrs, NFTA_RULE_HANDLE); handle && handle->size() == 8) {
          std::uint64_t be = 0;
          std::memcpy(&be, handle->data(), sizeof be);
          entry.handle = be64toh(be);
        }
        if (const auto udata = find_attribute(attrs, NFTA_RULE_USERDATA)) entry.ours = udata_has_our_comment(*udata);
        if (const auto expressions = find_attribute(attrs, NFTA_RULE_EXPRESSIONS); expressions && !entry.ours)
          entry.ours = expressions_have_our_comment(*expressions);
        rules.push_back(entry);
      },
      &kernel_message);
  if (err != 0) throw kernel_refused(what, err, kernel_message);
  return rules;
}

// One batch (NFNL_MSG_BATCH_BEGIN, the messages, NFNL_MSG_BATCH_END); every message in
// it asks for an ack. Returns 0 or the first errno.
int run_batch(NetfilterSocket& nl, const std::vector<std::function<Bytes(std::uint32_t)>>& messages,
              const std::string& what, std::string& kernel_message) {
  const auto begin = nl.next_seq();
  Bytes request = batch_marker(NFNL_MSG_BATCH_BEGIN, begin);
  std::uint32_t last_acked = begin;
  for (const auto& make : messages) {
    last_acked = nl.next_seq();
    const auto bytes = make(last_acked);
    request.insert(request.end(), bytes.begin(), bytes.end());
  }
  const auto end = nl.next_seq();
  const auto end_bytes = batch_marker(NFNL_MSG_BATCH_END, end);
  request.insert(request.end(), end_bytes.begin(), end_bytes.end());
  return nl.exchange(
      request, begin, end, last_acked, false, what, [](std::uint16_t, ByteView) {}, &kernel_message);
}

FamilyFirewall inspect_family(NetfilterSocket& nl, const FamilySpec& f, std::vector<RuleEntry>* rules_out = nullptr) {
  FamilyFirewall state;
  state.family = f.name;
  state.chain_exists = has_docker_user_chain(nl, f);
  if (!state.chain_exists) {
    state.detail = "no chain DOCKER-USER in " + family_label(f);
    return state;
  }
  const auto rules = list_rules(nl, f);
  std::size_t first_position = 0;
  for (std::size_t i = rules.size(); i-- > 0;)
    if (rules[i].ours) {
      ++state.our_rules;
      first_position = i + 1;
    }
  if (state.our_rules == 0)
    state.detail = "DOCKER-USER (" + std::string(f.name) + ") has " + std::to_string(rules.size()) +
                   " rule(s), none drops " + std::string(f.address);
  else
    state.detail = "DROP -d " + std::string(f.address) + std::string(f.prefix) + " is rule " +
                   std::to_string(first_position) + " of " + std::to_string(rules.size()) + " in DOCKER-USER (" +
                   f.name + ")";
  if (rules_out) *rules_out = rules;
  return state;
}

void insert_rule(NetfilterSocket& nl, const FamilySpec& f) {
  std::string kernel_message;
  const auto what =
      "inserting the DROP rule for " + std::string(f.address) + " into chain DOCKER-USER of " + family_label(f);
  const int err = run_batch(nl, {[&](std::uint32_t seq) { return new_rule_message(f, seq); }}, what, kernel_message);
  if (err == ENOENT) throw Error(ExitCode::kDocker, missing_docker_user_chain_message());
  if (err != 0) throw kernel_refused(what, err, kernel_message);
}

// Two applies racing (the systemd unit at Docker's start and `run`'s step) may both insert:
// keep the first of ours, delete the others. A rule the other one deleted first is fine.
int remove_duplicates(NetfilterSocket& nl, const FamilySpec& f, const std::vector<RuleEntry>& rules) {
  int removed = 0;
  bool kept = false;
  for (const auto& rule : rules) {
    if (!rule.ours) continue;
    if (!kept) {
      kept = true;
      continue;
    }
    std::string kernel_message;
    const auto what =
        "removing a duplicate of our rule (handle " + std::to_string(rule.handle) + ") from " + family_label(f);
    const int err = run_batch(nl, {[&](std::uint32_t seq) { return delete_rule_message(f, seq, rule.handle); }}, what,
                              kernel_message);
    if (err != 0 && err != ENOENT) throw kernel_refused(what, err, kernel_message);
    if (err == 0) ++removed;
  }
  return removed;
}

// The rule in this family's chain, exactly once. `required`: a missing chain is an error
// (ip); otherwise it is skipped and said so (ip6 without Docker's ip6tables).
FamilyFirewall ensure_family(NetfilterSocket& nl, const FamilySpec& f, bool required) {
  std::vector<RuleEntry> rules;
  auto state = inspect_family(nl, f, &rules);
  if (!state.chain_exists) {
    if (required) throw Error(ExitCode::kDocker, missing_docker_user_chain_message());
    state.detail += kNoIpv6Chain;
    return state;
  }
  bool added = false;
  if (state.our_rules == 0) {
    insert_rule(nl, f);
    state = inspect_family(nl, f, &rules);
    if (state.our_rules == 0)
      throw Error(ExitCode::kDocker, "metadata firewall: the rule for " + std::string(f.address) +
                                         " was accepted but is not listed in chain DOCKER-USER of " + family_label(f));
    added = true;
  }
  int removed = 0;
  if (state.our_rules > 1) {
    removed = remove_duplicates(nl, f, rules);
    state = inspect_family(nl, f);
  }
  state.added = added;
  state.removed_duplicates = removed;
  if (added) state.detail += ", inserted now";
  if (removed > 0) state.detail += ", " + std::to_string(removed) + " duplicate(s) removed";
  return state;
}

} // namespace

std::string missing_docker_user_chain_message() {
  return "Docker's DOCKER-USER chain is not in nftables table ip filter — is Docker running with iptables enabled, or "
         "on iptables-legacy?";
}

std::string FirewallStatus::summary() const { return ipv4.detail + "; " + ipv6.detail; }

FirewallStatus metadata_block_status() {
  NetfilterSocket nl;
  FirewallStatus status;
  status.ipv4 = inspect_family(nl, kIpv4Family);
  status.ipv6 = inspect_family(nl, kIpv6Family);
  if (!status.ipv6.chain_exists) status.ipv6.detail += kNoIpv6Chain;
  return status;
}

FirewallStatus apply_metadata_block() {
  NetfilterSocket nl;
  FirewallStatus status;
  status.ipv4 = ensure_family(nl, kIpv4Family, true);
  status.ipv6 = ensure_family(nl, kIpv6Family, false);
  return status;
}

} // namespace kb::net
