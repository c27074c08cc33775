/** What a topic member needs: the set of topics it holds (made on its first subscribe). */
export interface TopicMember {
  topics: Set<string> | undefined;
}

/** Who hears when a topic gains its first member and loses its last (a broker). */
export interface TopicWatcher {
  held(topic: string): void;
  released(topic: string): void;
}

/** Which members hold which topic, both ways, so a member leaving drops out of all of them. */
export class Topics<M extends TopicMember> {
  private readonly members = new Map<string, Set<M>>();

  constructor(private readonly watcher?: TopicWatcher) {}

  subscribe(member: M, topic: string): void {
    let members = this.members.get(topic);
    if (!members) {
      this.members.set(topic, (members = new Set()));
      this.watcher?.held(topic);
    }
    members.add(member);
    (member.topics ??= new Set()).add(topic);
  }

  /** False if the member did not hold the topic. */
  unsubscribe(member: M, topic: string): boolean {
    if (!member.topics?.delete(topic)) return false;
    this.leave(member, topic);
    return true;
  }

  leaveAll(member: M): void {
    for (const topic of member.topics ?? []) this.leave(member, topic);
    member.topics = undefined;
  }

  /** The members holding `topic`, if any. */
  subscribers(topic: string): ReadonlySet<M> | undefined {
    return this.members.get(topic);
  }

  private leave(member: M, topic: string): void {
    const members = this.members.get(topic);
    members?.delete(member);
    if (members?.size === 0) {
      this.members.delete(topic);
      this.watcher?.released(topic);
    }
  }
}
