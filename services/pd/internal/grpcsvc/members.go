package grpcsvc

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/nokv/nokv/api/pdpb"
)

// memberTimeout bounds one membership request to etcd: a change needs a
// quorum, which a group that lost its majority never gives.
const memberTimeout = 10 * time.Second

// ListMembers implements pdpb.PDServer: the etcd members of the group, as
// this member's etcd knows them (a linearizable read: it needs a quorum).
// Any member answers, leader or not.
func (s *Service) ListMembers(ctx context.Context, _ *pdpb.ListMembersRequest) (*pdpb.ListMembersResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, memberTimeout)
	defer cancel()
	members, leader, err := s.members(ctx)
	if err != nil {
		return nil, err
	}
	return &pdpb.ListMembersResponse{Header: header(nil), Members: members, LeaderAddr: leader}, nil
}

// AddMember implements pdpb.PDServer: etcd's MemberAdd of a voter with the
// given peer URL. etcd refuses while the members it would count on have not
// been connected for its health interval (5 s), or when the group would be
// left without a quorum of started members.
func (s *Service) AddMember(ctx context.Context, req *pdpb.AddMemberRequest) (*pdpb.AddMemberResponse, error) {
	u, err := url.Parse(req.GetPeerUrl())
	if err != nil || u.Scheme != "http" || u.Port() == "" || u.Path != "" && u.Path != "/" {
		return &pdpb.AddMemberResponse{Header: header(fmt.Errorf("peer url %q: want http://host:port: %w", req.GetPeerUrl(), errInvalid))}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, memberTimeout)
	defer cancel()
	resp, err := s.Storage.Client().MemberAdd(ctx, []string{req.GetPeerUrl()})
	if err != nil {
		return nil, fmt.Errorf("add PD member %s: %w", req.GetPeerUrl(), err)
	}
	s.Log.Warn("PD member added: start it with --join on an empty workdir", "id", fmt.Sprintf("%x", resp.Member.ID), "peer_url", req.GetPeerUrl())
	return &pdpb.AddMemberResponse{Header: header(nil), Member: memberOf(resp.Member, "", 0), Members: s.convert(resp.Members)}, nil
}

// RemoveMember implements pdpb.PDServer: etcd's MemberRemove. A member
// removed stops its etcd member (and nokv-pd exits); the group's quorum is
// counted on the members left.
func (s *Service) RemoveMember(ctx context.Context, req *pdpb.RemoveMemberRequest) (*pdpb.RemoveMemberResponse, error) {
	if req.GetId() == 0 {
		return &pdpb.RemoveMemberResponse{Header: header(fmt.Errorf("remove member: no member id: %w", errInvalid))}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, memberTimeout)
	defer cancel()
	resp, err := s.Storage.Client().MemberRemove(ctx, req.GetId())
	if err != nil {
		return nil, fmt.Errorf("remove PD member %x: %w", req.GetId(), err)
	}
	s.Log.Warn("PD member removed", "id", fmt.Sprintf("%x", req.GetId()))
	// The members as the change left them (this member may be the one
	// removed: it can no longer read the group's state).
	return &pdpb.RemoveMemberResponse{Header: header(nil), Members: s.convert(resp.Members)}, nil
}

// members lists the etcd members, marking the PD leader (by its address in
// the election) and etcd's raft leader, and returns the PD leader address.
func (s *Service) members(ctx context.Context) ([]*pdpb.PDMember, string, error) {
	cli := s.Storage.Client()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("list PD members: %w", err)
	}
	leader := ""
	if s.LeaderAddr != nil {
		leader = s.LeaderAddr()
	}
	return s.convertWith(resp.Members, leader), leader, nil
}

// convert is convertWith without the PD leader (a response to a change).
func (s *Service) convert(ms []*etcdserverpb.Member) []*pdpb.PDMember { return s.convertWith(ms, "") }

// convertWith converts etcd's members, sorted by name (members added but
// not started last), marking the PD leader (by its address) and etcd's raft
// leader as this member sees it.
func (s *Service) convertWith(ms []*etcdserverpb.Member, pdLeader string) []*pdpb.PDMember {
	etcdLeader := uint64(s.Storage.Etcd().Server.Leader())
	out := make([]*pdpb.PDMember, 0, len(ms))
	for _, m := range ms {
		out = append(out, memberOf(m, pdLeader, etcdLeader))
	}
	key := func(m *pdpb.PDMember) string {
		started := "0"
		if m.Name == "" {
			started = "1"
		}
		return started + m.Name + "\x00" + strings.Join(m.PeerUrls, ",")
	}
	slices.SortFunc(out, func(a, b *pdpb.PDMember) int { return strings.Compare(key(a), key(b)) })
	return out
}

func memberOf(m *etcdserverpb.Member, pdLeader string, etcdLeader uint64) *pdpb.PDMember {
	out := &pdpb.PDMember{Id: m.ID, Name: m.Name, PeerUrls: m.PeerURLs, ClientUrls: m.ClientURLs, EtcdLeader: m.ID != 0 && m.ID == etcdLeader}
	if pdLeader != "" {
		for _, u := range m.ClientURLs {
			if strings.TrimPrefix(u, "http://") == pdLeader {
				out.PdLeader = true
			}
		}
	}
	return out
}
