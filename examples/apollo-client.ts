// Apollo Client for the OMS gateway: APQ over GET (cacheable by hash) and Relay-style paging.
// npm i @apollo/client graphql crypto-hash
import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { relayStylePagination } from '@apollo/client/utilities';
import { sha256 } from 'crypto-hash';

const http = new HttpLink({
  uri: 'https://gateway.example.com/graphql',
  headers: { Authorization: `Token ${process.env.OMS_TOKEN}` },
});

// Hashed queries go as GET (`?extensions={"persistedQuery":...}`), so browsers and CDNs can
// cache them by URL; the first use of a document sends it once by POST to register it. With a
// gateway in persisted-only mode, ship the manifest instead (see the README).
const persisted = createPersistedQueryLink({ sha256, useGETForHashedQueries: true });

export const client = new ApolloClient({
  link: persisted.concat(http),
  cache: new InMemoryCache({
    typePolicies: {
      Query: {
        fields: {
          // One cached list per orderNumber; fetchMore({ variables: { after: endCursor } })
          // appends, and { last, before: startCursor } prepends.
          orderItems: relayStylePagination(['orderNumber']),
        },
      },
    },
  }),
});
